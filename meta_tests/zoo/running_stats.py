"""Running-statistics faults: the exponential or cumulative average kept wrong."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, ZooBackend


class _Biased(NumpyBatchNorm):
    def running_variance_sample(self, var, count):
        return var


class BiasedRunningVariance(ZooBackend):
    """running_var is updated with the biased batch variance (divides by n, not n-1)."""
    name = "biased-running-variance"
    batchnorm_class = _Biased


class _Inverted(NumpyBatchNorm):
    def momentum_factor(self):
        momentum = self.params["momentum"]
        return super().momentum_factor() if momentum is None else 1.0 - momentum


class InvertedMomentum(ZooBackend):
    """Keras's convention: running = momentum*running + (1-momentum)*batch."""
    name = "inverted-momentum"
    batchnorm_class = _Inverted


class _NoneIgnored(NumpyBatchNorm):
    def momentum_factor(self):
        momentum = self.params["momentum"]
        return 0.1 if momentum is None else momentum


class MomentumNoneIgnored(ZooBackend):
    """momentum=None falls back to the default 0.1 instead of a cumulative average."""
    name = "momentum-none-ignored"
    batchnorm_class = _NoneIgnored


class _NoneOffByOne(NumpyBatchNorm):
    def momentum_factor(self):
        momentum = self.params["momentum"]
        return 1.0 / (self.buffers["num_batches_tracked"] + 1) if momentum is None else momentum


class CumulativeAverageOffByOne(ZooBackend):
    """momentum=None uses 1/(n+1) after counting the batch: the first batch gets
    weight 1/2 and the initial running values never wash out."""
    name = "cumulative-average-off-by-one"
    batchnorm_class = _NoneOffByOne


class _NotCounted(NumpyBatchNorm):
    def __init__(self, layer, params, dtype):
        super().__init__(layer, params, dtype)
        self.seen = 0

    def count_batch(self):
        self.seen += 1

    def momentum_factor(self):
        momentum = self.params["momentum"]
        return 1.0 / self.seen if momentum is None else momentum


class BatchesNotTracked(ZooBackend):
    """num_batches_tracked is never incremented (a private counter drives the
    cumulative average instead)."""
    name = "batches-not-tracked"
    batchnorm_class = _NotCounted


class _VarStartsAtZero(NumpyBatchNorm):
    def initial_state(self):
        state = super().initial_state()
        if state["running_var"] is not None:
            state["running_var"] = np.zeros_like(state["running_var"])
        return state


class RunningVarStartsAtZero(ZooBackend):
    """running_var is initialised to zeros instead of ones."""
    name = "running-var-starts-at-zero"
    batchnorm_class = _VarStartsAtZero


class _StdForVar(NumpyBatchNorm):
    def running_variance_sample(self, var, count):
        return np.sqrt(super().running_variance_sample(var, count))


class RunningVarTakesStd(ZooBackend):
    """running_var is blended with the unbiased batch standard deviation instead of
    the variance."""
    name = "running-var-takes-std"
    batchnorm_class = _StdForVar
