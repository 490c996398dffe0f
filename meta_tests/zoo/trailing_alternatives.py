"""Correct alternative implementations of LayerNorm and RMSNorm. Each differs from
the baseline in a way the specs allow, so each must pass every clause of both
families; a clause that fails one of them is wrong, or its tolerance is."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.trailing_base import NumpyLayerNorm, NumpyRMSNorm, TrailingZooBackend


class TrailingBaseline(TrailingZooBackend):
    """The trailing-norm baseline itself: float32 work for 16- and 32-bit inputs,
    weight and bias stored in the layer dtype, RuntimeError for a mismatched input."""
    name = "trailing-baseline"


class _FoldedLayerNorm(NumpyLayerNorm):
    def forward(self, x):
        """y = x * a + b with a = weight / std and b = bias - mean * a per element of each
        slice (an inference kernel's folding), the mean held in the input dtype."""
        self.check_input(x)
        self._last = (x.astype(np.float64), self._float64_state(), self.training)
        xw = x.astype(self.work)
        mean, var = self.statistics(xw)
        mean = mean.astype(x.dtype).astype(self.work)
        a = 1 / np.sqrt(var + self.eps())
        b = -mean * a
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is not None:
            a, b = a * weight.astype(self.work), b * weight.astype(self.work)
        if bias is not None:
            b = b + bias.astype(self.work)
        return (xw * a + b).astype(x.dtype)


class _RoundedRMSNorm(NumpyRMSNorm):
    def affine(self, y):
        """x / rms rounded to the input dtype, then the product with weight in the input
        dtype (torch's composite rms_norm: result.type_as(input) * weight)."""
        weight = self.buffers["weight"]
        if weight is None:
            return y
        return (y.astype(self.dtype).astype(self.work) * weight.astype(self.work)).astype(self.dtype)


class TrailingFoldedAndRounded(TrailingZooBackend):
    """Layer norm folded into one scale and shift per element, from a mean held in the
    input dtype; RMS norm rounding x / rms to the input dtype before the weight."""
    name = "trailing-folded-and-rounded"
    layernorm_class = _FoldedLayerNorm
    rmsnorm_class = _RoundedRMSNorm
