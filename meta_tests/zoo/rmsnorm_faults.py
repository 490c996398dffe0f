"""RMS normalization faults: each member is the trailing-norm baseline with one
realistic fault in its state, statistic, eps, mode handling, input check or
backward pass."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.layernorm_faults import _sum_in_dtype
from meta_tests.zoo.trailing_base import NumpyRMSNorm, TrailingZooBackend


def _backend(name: str, layer: type, doc: str) -> type:
    """A zoo backend whose RMSNorm is ``layer``."""
    return type(name, (TrailingZooBackend,), {"__doc__": doc, "name": name, "rmsnorm_class": layer,
                                               "__module__": __name__})


# ----------------------------------------------------------------- state and API

class _OnePlusWeight(NumpyRMSNorm):
    def initial_state(self):
        state = super().initial_state()
        if state["weight"] is not None:
            state["weight"] = np.zeros_like(state["weight"])
        return state

    def affine(self, y):
        weight = self.buffers["weight"]
        return y if weight is None else y * (1 + weight.astype(self.work))


class _AffineAlways(NumpyRMSNorm):
    def affine_on(self):
        return True


RMSNormOnePlusWeight = _backend(
    "RMSNormOnePlusWeight", _OnePlusWeight,
    "The Gemma parametrisation: weight starts at zeros and the output is scaled by (1 + weight).")
RMSNormAffineFlagIgnored = _backend("RMSNormAffineFlagIgnored", _AffineAlways,
                                    "elementwise_affine=False is ignored: a weight is created anyway.")


# ----------------------------------------------------------------- statistic and numerics

class _Centered(NumpyRMSNorm):
    centered = True


class _EpsOutside(NumpyRMSNorm):
    def normalize(self, xw, center, var):
        return xw / (np.sqrt(var) + self.eps())


class _SumOfSquares(NumpyRMSNorm):
    def statistics(self, xw):
        return self.work(0), (xw * xw).sum(axis=self.axes(xw), keepdims=True)


class _LastAxisOnly(NumpyRMSNorm):
    def axes(self, x):
        return (x.ndim - 1,)


class _HalfAccumulation(NumpyRMSNorm):
    def statistics(self, xw):
        if self.dtype.itemsize != 2:
            return super().statistics(xw)
        lead = xw.shape[:xw.ndim - len(self.normalized_shape)]
        flat = xw.astype(self.dtype).reshape(lead + (-1,))
        with np.errstate(over="ignore", invalid="ignore"):
            square = (flat * flat).astype(self.dtype)
            ms = _sum_in_dtype(square, self.dtype).astype(self.work) / flat.shape[-1]
        return self.work(0), ms.reshape(lead + (1,) * len(self.normalized_shape))


RMSNormCentered = _backend("RMSNormCentered", _Centered,
                           "The mean is subtracted first: a layer norm without bias, not a root mean square.")
RMSNormEpsOutsideSqrt = _backend("RMSNormEpsOutsideSqrt", _EpsOutside,
                                 "x / (sqrt(mean(x^2)) + eps): eps added outside the square root.")
RMSNormSumOfSquares = _backend("RMSNormSumOfSquares", _SumOfSquares,
                               "Divides by sqrt(sum(x^2) + eps), the L2 norm, instead of the root mean square.")
RMSNormLastAxisOnly = _backend("RMSNormLastAxisOnly", _LastAxisOnly,
                               "The mean square is over the last axis only, even for a normalized_shape of several axes.")
RMSNormHalfPrecisionAccumulation = _backend(
    "RMSNormHalfPrecisionAccumulation", _HalfAccumulation,
    "For float16 and bfloat16 inputs the squares are summed in the input dtype.")


# ----------------------------------------------------------------- eps = None

class _EpsNoneDtype(NumpyRMSNorm):
    def eps(self):
        return np.finfo(self.dtype).eps if self.params.get("eps") is None else super().eps()


class _EpsNoneFixed(NumpyRMSNorm):
    def eps(self):
        return self.work(1e-5) if self.params.get("eps") is None else super().eps()


class _EpsNoneFloat32(NumpyRMSNorm):
    def eps(self):
        return self.work(np.finfo(np.float32).eps) if self.params.get("eps") is None else super().eps()


class _EpsNoneZero(NumpyRMSNorm):
    def eps(self):
        return self.work(0) if self.params.get("eps") is None else super().eps()


RMSNormEpsNoneInputDtype = _backend(
    "RMSNormEpsNoneInputDtype", _EpsNoneDtype,
    "eps=None is torch.finfo(x.dtype).eps (2**-10 for float16, 2**-7 for bfloat16), not the computation "
    "type's epsilon.")
RMSNormEpsNoneFixed = _backend("RMSNormEpsNoneFixed", _EpsNoneFixed,
                               "eps=None falls back to a fixed 1e-5, layer norm's default.")
RMSNormEpsNoneFloat32ForFloat64 = _backend("RMSNormEpsNoneFloat32ForFloat64", _EpsNoneFloat32,
                                           "eps=None is float32's epsilon for every dtype, float64 included.")
RMSNormEpsNoneZero = _backend("RMSNormEpsNoneZero", _EpsNoneZero, "eps=None means no eps at all.")


# ----------------------------------------------------------------- mode, dtype, errors

class _EvalUnnormalized(NumpyRMSNorm):
    def statistics(self, xw):
        if self.training:
            return super().statistics(xw)
        return self.work(0), np.ones((1,) * xw.ndim, self.work)


class _EvalKeepsTrainRms(NumpyRMSNorm):
    _kept = None

    def statistics(self, xw):
        if self.training:
            self._kept = super().statistics(xw)
            return self._kept
        if self._kept is not None and self._kept[1].shape == xw.mean(axis=self.axes(xw), keepdims=True).shape:
            return self._kept
        return super().statistics(xw)


class _HalfReturnsFloat32(NumpyRMSNorm):
    def forward(self, x):
        out = super().forward(x)
        return out.astype(np.float32) if x.dtype.itemsize == 2 else out


class _NoShapeCheck(NumpyRMSNorm):
    def check_input(self, x):
        pass


RMSNormEvalUsesUnitScale = _backend(
    "RMSNormEvalUsesUnitScale", _EvalUnnormalized,
    "Eval mode divides by a never-updated running mean square of 1 instead of the input's.")
RMSNormEvalKeepsTrainRms = _backend("RMSNormEvalKeepsTrainRms", _EvalKeepsTrainRms,
                                    "Eval calls reuse the root mean square of the last train call.")
RMSNormHalfReturnsFloat32 = _backend("RMSNormHalfReturnsFloat32", _HalfReturnsFloat32,
                                     "float16 and bfloat16 inputs give a float32 output.")
RMSNormShapeNotValidated = _backend(
    "RMSNormShapeNotValidated", _NoShapeCheck,
    "The input's trailing axes are never checked against normalized_shape.")


# ----------------------------------------------------------------- gradients

def _terms(layer):
    x, state, _ = layer._last
    axes = layer.axes(x)
    eps = layer.params.get("eps")
    eps = np.finfo(layer.work).eps if eps is None else eps
    return x, state, axes, 1.0 / np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)


class _RmsConstant(NumpyRMSNorm):
    def backward(self, grad_output):
        grads = super().backward(grad_output)
        _, state, _, r = _terms(self)
        weight = 1.0 if state["weight"] is None else state["weight"]
        grads["input"] = (grad_output.astype(np.float64) * weight * r).astype(grad_output.dtype)
        return grads


class _WeightGradFromInput(NumpyRMSNorm):
    def backward(self, grad_output):
        grads = super().backward(grad_output)
        if grads["weight"] is not None:
            x, _, axes, _ = _terms(self)
            leading = tuple(range(x.ndim - len(axes)))
            grads["weight"] = (grad_output.astype(np.float64) * x).sum(axis=leading).astype(self.dtype)
        return grads


RMSNormBackwardRmsConstant = _backend(
    "RMSNormBackwardRmsConstant", _RmsConstant,
    "Backward treats the root mean square as a constant: d input = grad * weight / rms.")
RMSNormWeightGradFromInput = _backend("RMSNormWeightGradFromInput", _WeightGradFromInput,
                                      "The weight gradient is sum(grad * x) instead of sum(grad * x / rms).")
