"""Numerical faults in batch normalization's statistics and normalisation."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, ZooBackend


class _EpsOutside(NumpyBatchNorm):
    def normalize(self, x, mean, var):
        eps = self.work(self.params["eps"])
        return self.affine((x - self.broadcast(mean, x.ndim)) / (np.sqrt(self.broadcast(var, x.ndim)) + eps))


class EpsOutsideSqrt(ZooBackend):
    """(x - mean) / (sqrt(var) + eps): eps added outside the square root."""
    name = "eps-outside-sqrt"
    batchnorm_class = _EpsOutside


class _NoEps(NumpyBatchNorm):
    def normalize(self, x, mean, var):
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.affine((x - self.broadcast(mean, x.ndim)) / np.sqrt(self.broadcast(var, x.ndim)))


class EpsMissing(ZooBackend):
    """eps is never added: (x - mean) / sqrt(var)."""
    name = "eps-missing"
    batchnorm_class = _NoEps


class _OnePass(NumpyBatchNorm):
    def batch_statistics(self, x):
        axes = (0,) + tuple(range(2, x.ndim))
        mean = x.mean(axis=axes)
        var = np.maximum((x * x).mean(axis=axes) - mean * mean, 0)
        return mean, var, x.size // x.shape[1]


class OnePassVariance(ZooBackend):
    """var = E[x^2] - E[x]^2 in the work precision (float32 for 16- and 32-bit
    inputs): catastrophic cancellation when the mean is large."""
    name = "one-pass-variance"
    batchnorm_class = _OnePass


class _UnbiasedNormalize(NumpyBatchNorm):
    def normalizing_variance(self, var, count):
        return var * (count / (count - 1))


class UnbiasedVarianceNormalizes(ZooBackend):
    """The output is normalised with the unbiased batch variance (n-1)."""
    name = "unbiased-variance-normalizes"
    batchnorm_class = _UnbiasedNormalize


class _RsqrtApprox(NumpyBatchNorm):
    def normalize(self, x, mean, var):
        inv = (1.0 / np.sqrt(self.broadcast(var, x.ndim) + self.work(self.params["eps"]))).astype(np.float16)
        return self.affine((x - self.broadcast(mean, x.ndim)) * inv.astype(self.work))


class HalfPrecisionRsqrt(ZooBackend):
    """1/sqrt(var + eps) is rounded to float16 (a fast approximate rsqrt) for every
    dtype: fine for half inputs, wrong beyond 3 digits for float32 and float64."""
    name = "half-precision-rsqrt"
    batchnorm_class = _RsqrtApprox
