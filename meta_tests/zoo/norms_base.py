"""The zoo's baseline for group and instance normalization: small, correct numpy
layers whose work is split into overridable methods, so that each faulty member
overrides exactly one of them.

Like the batch-norm baseline (base.py) they compute as a framework does, not as the
float64 reference does: in float32 for 16- and 32-bit inputs and in float64 for
float64, with state stored in the layer's dtype. They must pass every clause of
their families (they are listed among the correct alternatives).
"""

from __future__ import annotations

import math

import numpy as np

from meta_tests.zoo.base import BufferState, work_dtype
from nnconform.backend_api import Capabilities
from nnconform.dtypes import numpy_dtype
from nnconform.reference import groupnorm as groupnorm_reference
from nnconform.reference import instancenorm as instancenorm_reference

INSTANCENORMS = {"InstanceNorm1d": 1, "InstanceNorm2d": 2, "InstanceNorm3d": 3}


def broadcast(values: np.ndarray, ndim: int) -> np.ndarray:
    """Per-channel values shaped to broadcast along axis 1 of an ndim-rank input."""
    return np.reshape(values, (1, -1) + (1,) * (ndim - 2))


class NumpyNorm(BufferState):
    """What group and instance normalization share: per-channel weight and bias
    (weight absent without affine, bias absent without affine or with bias=False)."""
    trainable = frozenset({"weight", "bias"})

    def __init__(self, layer: str, params: dict, dtype: np.dtype):
        self.layer, self.params, self.dtype = layer, dict(params), np.dtype(dtype)
        self.work = work_dtype(dtype)
        self.training = True
        self.buffers = self.initial_state()
        self._last = None

    def channels(self) -> int:
        raise NotImplementedError

    def initial_state(self) -> dict:
        channels, affine = self.channels(), self.params["affine"]
        return {"weight": np.ones(channels, self.dtype) if affine else None,
                "bias": np.zeros(channels, self.dtype) if affine and self.params.get("bias", True) else None}

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def working_copy(self, x: np.ndarray) -> np.ndarray:
        """The input in the work dtype, read through its strides."""
        return x.astype(self.work)

    def standardize(self, x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        return (x - mean) / np.sqrt(var + self.work(self.params["eps"]))

    def affine(self, y: np.ndarray) -> np.ndarray:
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is not None:
            y = y * broadcast(weight.astype(self.work), y.ndim)
        if bias is not None:
            y = y + broadcast(bias.astype(self.work), y.ndim)
        return y

    def remember(self, x: np.ndarray) -> None:
        """What backward needs: the input, the state before the call and the mode."""
        state = {name: None if value is None else value.astype(np.float64) for name, value in self.buffers.items()}
        self._last = (x.astype(np.float64), state, self.training)

    def reference_backward(self, x, state, training, grad) -> dict:
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> dict:
        x, state, training = self._last
        grads = self.reference_backward(x, state, training, grad_output.astype(np.float64))
        return {name: None if g is None else g.astype(self.dtype) for name, g in grads.items()}


class NumpyGroupNorm(NumpyNorm):
    def channels(self) -> int:
        return self.params["num_channels"]

    def grouped(self, x: np.ndarray) -> np.ndarray:
        """(N, G, M): each row one (sample, group) of C/G consecutive channels and
        every position."""
        return x.reshape(x.shape[0], self.params["num_groups"], -1)

    def statistics(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and biased variance of each row, two passes."""
        mean = rows.mean(axis=-1, keepdims=True)
        return mean, ((rows - mean) ** 2).mean(axis=-1, keepdims=True)

    def check_input(self, x: np.ndarray) -> None:
        if x.ndim < 2 or x.shape[1] != self.channels():
            raise ValueError(f"expected an input of shape (N, {self.channels()}, *), got {x.shape}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x)
        self.remember(x)
        rows = self.grouped(self.working_copy(x))
        mean, var = self.statistics(rows)
        y = self.standardize(rows, mean, var).reshape(x.shape)
        return self.affine(y).astype(x.dtype)

    def reference_backward(self, x, state, training, grad):
        return groupnorm_reference.backward(x, state, self.params, training, grad)


class NumpyInstanceNorm(NumpyNorm):
    def channels(self) -> int:
        return self.params["num_features"]

    def initial_state(self) -> dict:
        state = super().initial_state()
        tracked, channels = self.params["track_running_stats"], self.channels()
        state["running_mean"] = np.zeros(channels, self.dtype) if tracked else None
        state["running_var"] = np.ones(channels, self.dtype) if tracked else None
        return state

    @property
    def tracked(self) -> bool:
        return self.buffers["running_mean"] is not None

    def as_batch(self, x: np.ndarray) -> np.ndarray:
        """A batched view: an unbatched (C, *spatial) input is one sample."""
        spatial = INSTANCENORMS[self.layer]
        if x.ndim not in (spatial + 1, spatial + 2):
            raise ValueError(f"{self.layer} expects a {spatial + 1}D or {spatial + 2}D input, got shape {x.shape}")
        return x[np.newaxis] if x.ndim == spatial + 1 else x

    def instance_statistics(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and biased variance of each (sample, channel) over the spatial axes."""
        axes = tuple(range(2, batch.ndim))
        mean = batch.mean(axis=axes, keepdims=True)
        return mean, ((batch - mean) ** 2).mean(axis=axes, keepdims=True)

    def check_input(self, batch: np.ndarray, shape: tuple[int, ...]) -> None:
        if self.training and math.prod(batch.shape[2:]) <= 1:
            raise ValueError(f"expected more than 1 spatial element when training, got input shape {shape}")

    def uses_instance_statistics(self) -> bool:
        return self.training or not self.tracked

    def updates_running_statistics(self) -> bool:
        return self.training and self.tracked

    def running_statistics(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        return (broadcast(self.buffers["running_mean"].astype(self.work), ndim),
                broadcast(self.buffers["running_var"].astype(self.work), ndim))

    def observed(self, mean: np.ndarray, var: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Per channel: the batch average of the instance means and of the unbiased
        instance variances."""
        n, c = mean.shape[:2]
        return mean.reshape(n, c).mean(axis=0), (var.reshape(n, c) * (count / max(count - 1, 1))).mean(axis=0)

    def blend(self, running: np.ndarray, observed: np.ndarray) -> np.ndarray:
        momentum = self.work(self.params["momentum"])
        return (1 - momentum) * running.astype(self.work) + momentum * observed

    def update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        observed_mean, observed_var = self.observed(mean, var, count)
        self.buffers["running_mean"] = self.blend(self.buffers["running_mean"], observed_mean).astype(self.dtype)
        self.buffers["running_var"] = self.blend(self.buffers["running_var"], observed_var).astype(self.dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        batch = self.as_batch(self.working_copy(x))
        count = math.prod(batch.shape[2:])
        self.check_input(batch, x.shape)
        self.remember(x)
        if self.uses_instance_statistics():
            mean, var = self.instance_statistics(batch)
        else:
            mean, var = self.running_statistics(batch.ndim)
        y = self.affine(self.standardize(batch, mean, var))
        if self.updates_running_statistics():
            self.update_running(*self.instance_statistics(batch), count)
        return (y if x.ndim == batch.ndim else y[0]).astype(x.dtype)

    def reference_backward(self, x, state, training, grad):
        backward = getattr(instancenorm_reference, f"backward{INSTANCENORMS[self.layer]}d")
        return backward(x, state, self.params, training, grad)


class NormZooBackend:
    """A backend built from the group- and instance-norm baselines. A zoo member
    subclasses it and swaps in a layer class that overrides one method."""
    name = "norm-zoo-baseline"
    version = "nnconform zoo"
    groupnorm_class = NumpyGroupNorm
    instancenorm_class = NumpyInstanceNorm
    conventions: dict = {}

    def __init__(self):
        self.capabilities = Capabilities(layers=frozenset(("GroupNorm",) + tuple(INSTANCENORMS)), autograd=True,
                                         conventions=dict(self.conventions))

    def seed(self, seed: int) -> None:
        """Deterministic layers: nothing to seed."""

    def validate(self, layer: str, params: dict) -> None:
        if layer == "GroupNorm" and params["num_channels"] % params["num_groups"]:
            raise ValueError(f"num_channels ({params['num_channels']}) must be divisible by "
                             f"num_groups ({params['num_groups']})")

    def build(self, layer: str, params: dict, dtype: str):
        self.validate(layer, params)
        if layer == "GroupNorm":
            return self.groupnorm_class(layer, params, numpy_dtype(dtype))
        if layer in INSTANCENORMS:
            return self.instancenorm_class(layer, params, numpy_dtype(dtype))
        raise ValueError(f"backend {self.name!r} has no layer {layer!r}")
