"""The zoo's baseline for the trailing-axis normalizations: a small, correct numpy
LayerNorm and RMSNorm whose work is split into overridable methods, so that each
faulty member overrides exactly one of them.

As base.py's batch norm, the baseline computes as a typical framework does: in
float32 for 16- and 32-bit inputs and in float64 for float64, with its weight and
bias stored in the layer's dtype; it rejects an input whose trailing axes are not
normalized_shape with RuntimeError, as torch does. Its gradients are the float64
reference's, rounded to the dtype. It must pass both families (it is listed among
the correct alternatives).
"""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import BufferState, ZooBackend, work_dtype
from nnconform.backend_api import Capabilities
from nnconform.dtypes import dtype_name, numpy_dtype
from nnconform.reference import layernorm as layernorm_reference
from nnconform.reference import rmsnorm as rmsnorm_reference

TRAILING = ("LayerNorm", "RMSNorm")


class NumpyTrailingNorm(BufferState):
    """What layer and RMS normalization share: state, input check, axes, affine."""
    reference = None
    centered = True
    has_bias = True

    def __init__(self, params: dict, dtype: np.dtype):
        self.params, self.dtype = params, np.dtype(dtype)
        self.work = work_dtype(dtype)
        self.training = True
        self.buffers = self.initial_state()
        self._last = None

    @property
    def trainable(self) -> frozenset:
        return frozenset(name for name, value in self.buffers.items() if value is not None)

    @property
    def normalized_shape(self) -> tuple[int, ...]:
        shape = self.params["normalized_shape"]
        return (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def affine_on(self) -> bool:
        return bool(self.params.get("elementwise_affine", True))

    def bias_on(self) -> bool:
        return self.has_bias and self.affine_on() and bool(self.params.get("bias", True))

    def initial_state(self) -> dict:
        shape = self.normalized_shape
        state = {"weight": np.ones(shape, self.dtype) if self.affine_on() else None}
        if self.has_bias:
            state["bias"] = np.zeros(shape, self.dtype) if self.bias_on() else None
        return state

    def check_input(self, x: np.ndarray) -> None:
        shape = self.normalized_shape
        if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
            raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                               f"[*, {', '.join(map(str, shape))}], but got input of size {list(x.shape)}")

    def axes(self, x: np.ndarray) -> tuple[int, ...]:
        return tuple(range(x.ndim - len(self.normalized_shape), x.ndim))

    def eps(self):
        eps = self.params.get("eps")
        return np.finfo(self.work).eps if eps is None else self.work(eps)

    def statistics(self, xw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The value subtracted (the mean, or 0) and the variance (or mean square)."""
        axes = self.axes(xw)
        if not self.centered:
            return self.work(0), (xw * xw).mean(axis=axes, keepdims=True)
        mean = xw.mean(axis=axes, keepdims=True)
        return mean, ((xw - mean) ** 2).mean(axis=axes, keepdims=True)

    def normalize(self, xw, center, var) -> np.ndarray:
        return (xw - center) / np.sqrt(var + self.eps())

    def affine(self, y: np.ndarray) -> np.ndarray:
        weight, bias = self.buffers["weight"], self.buffers.get("bias")
        if weight is not None:
            y = y * weight.astype(self.work)
        if bias is not None:
            y = y + bias.astype(self.work)
        return y

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x)
        self._last = (x.astype(np.float64), self._float64_state(), self.training)
        xw = x.astype(self.work)
        center, var = self.statistics(xw)
        return self.affine(self.normalize(xw, center, var)).astype(x.dtype)

    def _float64_state(self) -> dict:
        return {name: None if value is None else value.astype(np.float64) for name, value in self.buffers.items()}

    def backward(self, grad_output: np.ndarray) -> dict:
        x, state, training = self._last
        grads = self.reference.backward(x, state, self.params, training, grad_output.astype(np.float64),
                                        dtype_name(self.dtype))
        out = {"input": grads["input"].astype(grad_output.dtype)}
        for name in self.buffers:
            out[name] = None if grads.get(name) is None else grads[name].astype(self.dtype)
        return out


class NumpyLayerNorm(NumpyTrailingNorm):
    reference = layernorm_reference


class NumpyRMSNorm(NumpyTrailingNorm):
    """No mean subtracted, no bias; eps=None is the work dtype's epsilon."""
    reference = rmsnorm_reference
    centered = False
    has_bias = False


class TrailingZooBackend(ZooBackend):
    """The baseline backend of the trailing-axis norms. A zoo member subclasses it
    and swaps in a layer class that overrides one method."""
    name = "zoo-trailing-baseline"
    layernorm_class = NumpyLayerNorm
    rmsnorm_class = NumpyRMSNorm

    def __init__(self):
        super().__init__()
        self.capabilities = Capabilities(layers=frozenset(TRAILING), autograd=True)

    def build(self, layer: str, params: dict, dtype: str):
        if layer == "LayerNorm":
            return self.layernorm_class(dict(params), numpy_dtype(dtype))
        if layer == "RMSNorm":
            return self.rmsnorm_class(dict(params), numpy_dtype(dtype))
        return super().build(layer, params, dtype)
