"""Layer normalization faults: each member is the trailing-norm baseline with one
realistic fault in its state, statistics, affine step, mode handling, input check
or backward pass."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.layout import _as_if_contiguous
from meta_tests.zoo.trailing_base import NumpyLayerNorm, TrailingZooBackend


def _backend(name: str, layer: type, doc: str) -> type:
    """A zoo backend whose LayerNorm is ``layer``."""
    return type(name, (TrailingZooBackend,), {"__doc__": doc, "name": name, "layernorm_class": layer,
                                               "__module__": __name__})


# ----------------------------------------------------------------- state and API

class _WeightUniform(NumpyLayerNorm):
    def initial_state(self):
        state = super().initial_state()
        if state["weight"] is not None:
            rng = np.random.default_rng(len(self.normalized_shape))
            state["weight"] = rng.uniform(0, 1, state["weight"].shape).astype(self.dtype)
        return state


class _BiasAlways(NumpyLayerNorm):
    def bias_on(self):
        return self.affine_on()


class _BiasFalseDropsWeight(NumpyLayerNorm):
    def affine_on(self):
        return super().affine_on() and bool(self.params.get("bias", True))


class _AffineAlways(NumpyLayerNorm):
    def affine_on(self):
        return True


class _BiasBeforeWeight(NumpyLayerNorm):
    def affine(self, y):
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if bias is not None:
            y = y + bias.astype(self.work)
        return y if weight is None else y * weight.astype(self.work)


class _Swapped(NumpyLayerNorm):
    def affine(self, y):
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is None or bias is None:
            return super().affine(y)
        return y * bias.astype(self.work) + weight.astype(self.work)


LayerNormWeightInitUniform = _backend("LayerNormWeightInitUniform", _WeightUniform,
                                      "weight initialised from U(0, 1) instead of ones.")
LayerNormBiasFlagIgnored = _backend("LayerNormBiasFlagIgnored", _BiasAlways,
                                    "bias=False is ignored: a zero bias is created (and exposed) anyway.")
LayerNormBiasFalseDropsWeight = _backend("LayerNormBiasFalseDropsWeight", _BiasFalseDropsWeight,
                                         "bias=False is read as elementwise_affine=False: the weight goes too.")
LayerNormAffineFlagIgnored = _backend("LayerNormAffineFlagIgnored", _AffineAlways,
                                      "elementwise_affine=False is ignored: weight and bias are created anyway.")
LayerNormBiasBeforeWeight = _backend("LayerNormBiasBeforeWeight", _BiasBeforeWeight,
                                     "y = (x_hat + bias) * weight: the shift applied before the scale.")
LayerNormWeightAndBiasSwapped = _backend("LayerNormWeightAndBiasSwapped", _Swapped,
                                         "y = x_hat * bias + weight: the affine parameters in each other's place.")


# ----------------------------------------------------------------- statistics and numerics

class _AllButFirstAxis(NumpyLayerNorm):
    def axes(self, x):
        return tuple(range(1, x.ndim)) if x.ndim > 1 else (0,)


class _LastAxisOnly(NumpyLayerNorm):
    def axes(self, x):
        return (x.ndim - 1,)


class _Unbiased(NumpyLayerNorm):
    def statistics(self, xw):
        mean, var = super().statistics(xw)
        count = int(np.prod(self.normalized_shape))
        with np.errstate(divide="ignore", invalid="ignore"):
            return mean, var * self.work(count) / self.work(count - 1)


class _EpsOutside(NumpyLayerNorm):
    def normalize(self, xw, center, var):
        return (xw - center) / (np.sqrt(var) + self.eps())


class _OnePass(NumpyLayerNorm):
    def statistics(self, xw):
        axes = self.axes(xw)
        mean = xw.mean(axis=axes, keepdims=True)
        return mean, np.maximum((xw * xw).mean(axis=axes, keepdims=True) - mean * mean, 0)


class _HalfAccumulation(NumpyLayerNorm):
    def statistics(self, xw):
        if self.dtype.itemsize != 2:
            return super().statistics(xw)
        lead = xw.shape[:xw.ndim - len(self.normalized_shape)]
        flat = xw.astype(self.dtype).reshape(lead + (-1,))
        count = flat.shape[-1]
        with np.errstate(over="ignore", invalid="ignore"):
            mean = _sum_in_dtype(flat, self.dtype).astype(self.work) / count
            centered = (flat.astype(self.work) - mean[..., None]).astype(self.dtype)
            var = _sum_in_dtype(centered * centered, self.dtype).astype(self.work) / count
        shape = lead + (1,) * len(self.normalized_shape)
        return mean.reshape(shape), var.reshape(shape)


def _sum_in_dtype(flat: np.ndarray, dtype) -> np.ndarray:
    """The sum over the last axis, one value at a time, rounded to ``dtype`` after each."""
    total = np.zeros(flat.shape[:-1], dtype)
    for index in range(flat.shape[-1]):
        total = (total + flat[..., index]).astype(dtype)
    return total


class _Float32Only(NumpyLayerNorm):
    def __init__(self, params, dtype):
        super().__init__(params, dtype)
        self.work = np.float32


class _StridesIgnored(NumpyLayerNorm):
    def forward(self, x):
        return super().forward(_as_if_contiguous(x))


LayerNormAllButFirstAxis = _backend("LayerNormAllButFirstAxis", _AllButFirstAxis,
                                    "Statistics over every axis after the first, whatever normalized_shape says.")
LayerNormLastAxisOnly = _backend("LayerNormLastAxisOnly", _LastAxisOnly,
                                 "Statistics over the last axis only, even for a normalized_shape of several axes.")
LayerNormUnbiasedVariance = _backend("LayerNormUnbiasedVariance", _Unbiased,
                                     "The output is normalised with the unbiased variance (M-1), torch.var's default.")
LayerNormEpsOutsideSqrt = _backend("LayerNormEpsOutsideSqrt", _EpsOutside,
                                   "(x - mean) / (sqrt(var) + eps): eps added outside the square root.")
LayerNormOnePassVariance = _backend("LayerNormOnePassVariance", _OnePass,
                                    "var = E[x^2] - E[x]^2 in float32: catastrophic cancellation at a large mean.")
LayerNormHalfPrecisionAccumulation = _backend(
    "LayerNormHalfPrecisionAccumulation", _HalfAccumulation,
    "For float16 and bfloat16 inputs the sums of the statistics accumulate in the input dtype.")
LayerNormFloat64ComputedInFloat32 = _backend("LayerNormFloat64ComputedInFloat32", _Float32Only,
                                             "float64 inputs are computed in float32 and cast back.")
LayerNormStridesIgnored = _backend("LayerNormStridesIgnored", _StridesIgnored,
                                   "The input's buffer is read as if C-contiguous: strided and channels-last "
                                   "inputs are misread.")


# ----------------------------------------------------------------- mode, dtype, errors

class _EvalInitialStats(NumpyLayerNorm):
    def statistics(self, xw):
        if self.training:
            return super().statistics(xw)
        shape = (1,) * xw.ndim
        return np.zeros(shape, self.work), np.ones(shape, self.work)


class _EvalKeepsTrainStats(NumpyLayerNorm):
    _kept = None

    def statistics(self, xw):
        if self.training:
            self._kept = super().statistics(xw)
            return self._kept
        if self._kept is not None and self._kept[0].shape == xw.mean(axis=self.axes(xw), keepdims=True).shape:
            return self._kept
        return super().statistics(xw)


class _HalfReturnsFloat32(NumpyLayerNorm):
    def forward(self, x):
        out = super().forward(x)
        return out.astype(np.float32) if x.dtype.itemsize == 2 else out


class _NoShapeCheck(NumpyLayerNorm):
    def check_input(self, x):
        pass


LayerNormEvalUsesInitialStats = _backend(
    "LayerNormEvalUsesInitialStats", _EvalInitialStats,
    "Eval mode normalises with a never-updated mean 0 and variance 1 (batch-norm code with running statistics).")
LayerNormEvalKeepsTrainStats = _backend(
    "LayerNormEvalKeepsTrainStats", _EvalKeepsTrainStats,
    "Eval calls reuse the statistics of the last train call (a cache meant for the backward pass).")
LayerNormHalfReturnsFloat32 = _backend("LayerNormHalfReturnsFloat32", _HalfReturnsFloat32,
                                       "float16 and bfloat16 inputs give a float32 output.")
LayerNormShapeNotValidated = _backend(
    "LayerNormShapeNotValidated", _NoShapeCheck,
    "The input's trailing axes are never checked against normalized_shape: the last len(normalized_shape) "
    "axes are normalised whatever their sizes.")


# ----------------------------------------------------------------- gradients

def _forward_terms(layer):
    x, state, _ = layer._last
    axes = layer.axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + layer.params["eps"])
    return x, state, axes, (x - mean) * inv_std, inv_std


def _grads(layer, grad_output, d_input, d_weight) -> dict:
    _, state, axes, xhat, _ = _forward_terms(layer)
    g = grad_output.astype(np.float64)
    leading = tuple(range(g.ndim - len(axes)))
    cast = lambda v: None if v is None else np.asarray(v).astype(layer.dtype)
    return {"input": d_input.astype(grad_output.dtype),
            "weight": cast(None if state["weight"] is None else d_weight),
            "bias": cast(None if state["bias"] is None else g.sum(axis=leading))}


class _StatsConstant(NumpyLayerNorm):
    def backward(self, grad_output):
        x, state, axes, xhat, inv_std = _forward_terms(self)
        g = grad_output.astype(np.float64)
        weight = 1.0 if state["weight"] is None else state["weight"]
        leading = tuple(range(g.ndim - len(axes)))
        return _grads(self, grad_output, g * weight * inv_std, (g * xhat).sum(axis=leading))


class _InputGradIgnoresWeight(NumpyLayerNorm):
    def backward(self, grad_output):
        grads = super().backward(grad_output)
        x, state, axes, xhat, inv_std = _forward_terms(self)
        g = grad_output.astype(np.float64)
        d_input = inv_std * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))
        grads["input"] = d_input.astype(grad_output.dtype)
        return grads


class _WeightGradFromInput(NumpyLayerNorm):
    def backward(self, grad_output):
        grads = super().backward(grad_output)
        if grads["weight"] is not None:
            x, _, axes, _, _ = _forward_terms(self)
            leading = tuple(range(x.ndim - len(axes)))
            grads["weight"] = (grad_output.astype(np.float64) * x).sum(axis=leading).astype(self.dtype)
        return grads


LayerNormBackwardStatsConstant = _backend(
    "LayerNormBackwardStatsConstant", _StatsConstant,
    "Backward treats the mean and variance as constants: d input = grad * weight / sqrt(var + eps).")
LayerNormInputGradIgnoresWeight = _backend(
    "LayerNormInputGradIgnoresWeight", _InputGradIgnoresWeight,
    "The input gradient is computed as if weight were 1.")
LayerNormWeightGradFromInput = _backend("LayerNormWeightGradFromInput", _WeightGradFromInput,
                                        "The weight gradient is sum(grad * x) instead of sum(grad * x_hat).")
