"""The zoo's baseline: a small, correct numpy implementation of Dropout and
BatchNorm whose work is split into overridable methods, so that each faulty
member of the zoo overrides exactly one of them.

The baseline computes as a typical framework does, not as the float64 reference
does: in float32 for 16- and 32-bit inputs and in float64 for float64, with its
state stored in the layer's dtype. It must pass the whole suite (it is listed
among the correct alternatives), so every fault is measured against a backend
that is conforming except for that one fault.
"""

from __future__ import annotations

import numpy as np

from nnconform.backend_api import Capabilities
from nnconform.dtypes import numpy_dtype
from nnconform.reference import batchnorm_backward, dropout_backward

BATCHNORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")


def work_dtype(dtype: np.dtype) -> type:
    """The precision a conforming layer computes in for inputs of ``dtype``."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


class NumpyDropout:
    trainable = frozenset()

    def __init__(self, params: dict, backend: "ZooBackend"):
        self.p, self.inplace = params["p"], params.get("inplace", False)
        self.training, self.backend = True, backend
        self._last = None

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self) -> dict:
        return {}

    def keep_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Each unit kept independently with probability 1-p."""
        return self.backend.rng.random(shape) >= self.p

    def scale(self) -> float:
        return 0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p)

    def apply(self, x: np.ndarray, keep: np.ndarray) -> np.ndarray:
        work = work_dtype(x.dtype)
        return np.where(keep, x.astype(work) * work(self.scale()), work(0)).astype(x.dtype)

    def eval_output(self, x: np.ndarray) -> np.ndarray:
        return x.copy()

    def deliver(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Honour inplace: write into the caller's array, or leave it untouched."""
        if self.inplace:
            x[...] = out
            return x
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training:
            self._last = (np.ones(x.shape, dtype=bool), 0.0)
            return self.deliver(x, self.eval_output(x))
        keep = self.keep_mask(x.shape)
        self._last = (keep, self.p)
        return self.deliver(x, self.apply(x, keep))

    def backward(self, grad_output: np.ndarray) -> dict:
        keep, p = self._last
        return {name: None if g is None else g.astype(grad_output.dtype)
                for name, g in dropout_backward(keep, p, grad_output).items()}


class NumpyBatchNorm:
    trainable = frozenset({"weight", "bias"})

    def __init__(self, layer: str, params: dict, dtype: np.dtype):
        self.layer, self.params, self.dtype = layer, params, np.dtype(dtype)
        self.work = work_dtype(dtype)
        self.training = True
        self.buffers = self.initial_state()
        self._last = None

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    @property
    def tracked(self) -> bool:
        return self.buffers["running_mean"] is not None

    def initial_state(self) -> dict:
        channels, params = self.params["num_features"], self.params
        tracked, affine = params["track_running_stats"], params["affine"]
        return {
            "running_mean": np.zeros(channels, self.dtype) if tracked else None,
            "running_var": np.ones(channels, self.dtype) if tracked else None,
            "num_batches_tracked": 0 if tracked else None,
            "weight": np.ones(channels, self.dtype) if affine else None,
            "bias": np.zeros(channels, self.dtype) if affine else None,
        }

    def state(self) -> dict:
        return {name: value if value is None or isinstance(value, int) else value.copy()
                for name, value in self.buffers.items()}

    def load_state(self, values: dict) -> None:
        for name, value in values.items():
            if self.buffers.get(name) is None:
                raise ValueError(f"the layer has no {name} to set")
            self.buffers[name] = int(value) if isinstance(value, int) else np.asarray(value).astype(self.dtype)

    def channel_axis(self, x: np.ndarray) -> int:
        return 1

    def to_channels_second(self, x: np.ndarray) -> np.ndarray:
        """The input in (N, C, ...) layout, wherever the layer believes C to be."""
        return np.moveaxis(x, self.channel_axis(x), 1)

    def batch_statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Per-channel mean and biased variance of a (N, C, ...) input in the work dtype."""
        axes = (0,) + tuple(range(2, x.ndim))
        mean = x.mean(axis=axes)
        var = ((x - self.broadcast(mean, x.ndim)) ** 2).mean(axis=axes)
        return mean, var, x.size // x.shape[1]

    def normalizing_variance(self, var: np.ndarray, count: int) -> np.ndarray:
        return var

    def normalize(self, x, mean, var) -> np.ndarray:
        y = (x - self.broadcast(mean, x.ndim)) / np.sqrt(self.broadcast(var, x.ndim) + self.work(self.params["eps"]))
        return self.affine(y)

    def affine(self, y: np.ndarray) -> np.ndarray:
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is None:
            return y
        return y * self.broadcast(weight.astype(self.work), y.ndim) + self.broadcast(bias.astype(self.work), y.ndim)

    def momentum_factor(self) -> float:
        momentum = self.params["momentum"]
        return 1.0 / self.buffers["num_batches_tracked"] if momentum is None else momentum

    def count_batch(self) -> None:
        self.buffers["num_batches_tracked"] += 1

    def running_variance_sample(self, var: np.ndarray, count: int) -> np.ndarray:
        """The batch variance that enters running_var: unbiased."""
        return var * (count / (count - 1))

    def blend(self, running: np.ndarray, batch: np.ndarray, factor: float) -> np.ndarray:
        return (1 - factor) * running.astype(self.work) + factor * batch

    def update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        self.count_batch()
        factor = self.work(self.momentum_factor())
        new_mean = self.blend(self.buffers["running_mean"], mean, factor)
        new_var = self.blend(self.buffers["running_var"], self.running_variance_sample(var, count), factor)
        self.buffers["running_mean"] = new_mean.astype(self.dtype)
        self.buffers["running_var"] = new_var.astype(self.dtype)

    def check_input(self, x: np.ndarray, count: int) -> None:
        if self.training and count <= 1:
            raise ValueError(f"expected more than 1 value per channel when training, got input shape {x.shape}")

    def uses_batch_statistics(self) -> bool:
        return self.training or not self.tracked

    def updates_running_statistics(self) -> bool:
        return self.training and self.tracked

    def running_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        return self.buffers["running_mean"].astype(self.work), self.buffers["running_var"].astype(self.work)

    def forward(self, x: np.ndarray) -> np.ndarray:
        axis = self.channel_axis(x)
        xw = self.to_channels_second(x).astype(self.work)
        count = xw.size // xw.shape[1]
        self.check_input(x, count)
        self._last = (np.moveaxis(x, axis, 1).astype(np.float64), self._float64_state(), self.training)
        if self.uses_batch_statistics():
            mean, var, count = self.batch_statistics(xw)
            norm_var = self.normalizing_variance(var, count)
        else:
            mean, norm_var = self.running_statistics()
        y = self.normalize(xw, mean, norm_var)
        if self.updates_running_statistics():
            batch_mean, batch_var, count = self.batch_statistics(xw) if not self.training else (mean, var, count)
            self.update_running(batch_mean, batch_var, count)
        return np.moveaxis(y, 1, axis).astype(x.dtype)

    def _float64_state(self) -> dict:
        return {name: value if value is None or isinstance(value, int) else value.astype(np.float64)
                for name, value in self.buffers.items()}

    def backward(self, grad_output: np.ndarray) -> dict:
        x, state, training = self._last
        grads = batchnorm_backward(x, state, self.params, training, grad_output.astype(np.float64))
        return {name: None if g is None else g.astype(self.dtype) for name, g in grads.items()}

    @staticmethod
    def broadcast(values: np.ndarray, ndim: int) -> np.ndarray:
        return np.reshape(values, (1, -1) + (1,) * (ndim - 2))


class ZooBackend:
    """A backend built from the baseline layers. A zoo member subclasses it and
    swaps in a layer class that overrides one method."""
    name = "zoo-baseline"
    version = "nnconform zoo"
    dropout_class = NumpyDropout
    batchnorm_class = NumpyBatchNorm

    def __init__(self):
        self.capabilities = Capabilities(layers=frozenset(("Dropout",) + BATCHNORMS), autograd=True)
        self.rng = self.make_rng(0)

    def make_rng(self, seed: int) -> np.random.Generator:
        return np.random.default_rng(seed)

    def seed(self, seed: int) -> None:
        self.rng = self.make_rng(seed)

    def validate(self, layer: str, params: dict) -> None:
        if layer == "Dropout" and not 0.0 <= params["p"] <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {params['p']}")

    def build(self, layer: str, params: dict, dtype: str):
        self.validate(layer, params)
        if layer == "Dropout":
            return self.dropout_class(dict(params), self)
        if layer in BATCHNORMS:
            return self.batchnorm_class(layer, dict(params), numpy_dtype(dtype))
        raise ValueError(f"backend {self.name!r} has no layer {layer!r}")


class BufferState:
    """state() and load_state() for a numpy zoo layer that keeps its parameters and
    buffers in ``self.buffers`` (None where absent) in ``self.dtype``."""

    def state(self) -> dict:
        return {name: None if value is None else value.copy() for name, value in self.buffers.items()}

    def load_state(self, values: dict) -> None:
        for name, value in values.items():
            if self.buffers.get(name) is None:
                raise ValueError(f"the layer has no {name} to set")
            self.buffers[name] = np.asarray(value).astype(self.dtype)
