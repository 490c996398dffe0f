"""Dtype faults: outputs in the wrong dtype, or work done in too low or too high a
precision for the input."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, NumpyDropout, ZooBackend


def _is_low_precision(dtype) -> bool:
    return np.dtype(dtype).itemsize == 2


class _DropoutUpcasts(NumpyDropout):
    def apply(self, x, keep):
        out = super().apply(x, keep)
        return out.astype(np.float32) if _is_low_precision(x.dtype) else out

    def deliver(self, x, out):
        if self.inplace:
            x[...] = out
        return out


class DropoutHalfReturnsFloat32(ZooBackend):
    """Train-mode dropout returns float32 for float16 and bfloat16 inputs (the
    result of an upcast kernel never cast back)."""
    name = "dropout-half-returns-float32"
    dropout_class = _DropoutUpcasts


class _BatchNormUpcasts(NumpyBatchNorm):
    def forward(self, x):
        out = super().forward(x)
        return out.astype(np.float32) if _is_low_precision(x.dtype) else out


class BatchNormHalfReturnsFloat32(ZooBackend):
    """Batch norm returns float32 for float16 and bfloat16 inputs (mixed-precision
    output left in the accumulation dtype)."""
    name = "batchnorm-half-returns-float32"
    batchnorm_class = _BatchNormUpcasts


class _HalfAccumulation(NumpyBatchNorm):
    def batch_statistics(self, x):
        if not _is_low_precision(self.dtype):
            return super().batch_statistics(x)
        low = x.astype(self.dtype)
        axes = (0,) + tuple(range(2, x.ndim))
        count = x.size // x.shape[1]
        total = np.zeros(x.shape[1], self.dtype)
        for sample in np.moveaxis(low, 1, -1).reshape(-1, x.shape[1]):
            total = (total + sample).astype(self.dtype)
        mean = (total.astype(np.float32) / count)
        centered = (low.astype(np.float32) - self.broadcast(mean, x.ndim)).astype(self.dtype)
        var = (centered.astype(np.float32) ** 2).mean(axis=axes)
        return mean.astype(self.work), var.astype(self.work), count


class HalfPrecisionAccumulation(ZooBackend):
    """For float16 and bfloat16 inputs the per-channel sum is accumulated in the
    input's own dtype: the mean loses digits, or overflows, as the batch grows."""
    name = "half-precision-accumulation"
    batchnorm_class = _HalfAccumulation


class _Float64AsFloat32(NumpyDropout):
    def apply(self, x, keep):
        if x.dtype != np.float64:
            return super().apply(x, keep)
        return super().apply(x.astype(np.float32), keep).astype(np.float64)


class DropoutFloat64ComputedInFloat32(ZooBackend):
    """float64 inputs are silently computed in float32 (a device without float64)
    and cast back: the dtype is right, the values are not."""
    name = "dropout-float64-computed-in-float32"
    dropout_class = _Float64AsFloat32


class _BatchNormFloat32(NumpyBatchNorm):
    def __init__(self, layer, params, dtype):
        super().__init__(layer, params, dtype)
        self.work = np.float32


class BatchNormFloat64ComputedInFloat32(ZooBackend):
    """float64 batch norm computed in float32 and cast back."""
    name = "batchnorm-float64-computed-in-float32"
    batchnorm_class = _BatchNormFloat32
