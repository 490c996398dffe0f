"""Faults that hide behind default state or vacuous evidence: invisible while weight
is 1, bias is 0 and the running statistics are what a few warmup calls leave, or while
a check skips every zero. Each must be caught by the default run now that state is
drawn and a clause that examined nothing does not pass."""

from __future__ import annotations

import dataclasses

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, NumpyDropout, ZooBackend
from nnconform.reference import batchnorm_backward


class _BiasBeforeWeight(NumpyBatchNorm):
    def affine(self, y):
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is None:
            return y
        return (y + self.broadcast(bias.astype(self.work), y.ndim)) * self.broadcast(weight.astype(self.work), y.ndim)


class AffineBiasBeforeWeight(ZooBackend):
    """Computes (xhat + bias) * weight instead of xhat * weight + bias: the same output
    while weight is 1 or bias is 0."""
    name = "affine-bias-before-weight"
    batchnorm_class = _BiasBeforeWeight


class _GradientIgnoresWeight(NumpyBatchNorm):
    def backward(self, grad_output):
        x, state, training = self._last
        unit = dict(state, weight=None if state["weight"] is None else np.ones_like(state["weight"]))
        grads = batchnorm_backward(x, unit, self.params, training, grad_output.astype(np.float64))
        if state["weight"] is not None:  # the parameter gradients do not involve weight anyway
            real = batchnorm_backward(x, state, self.params, training, grad_output.astype(np.float64))
            grads["weight"], grads["bias"] = real["weight"], real["bias"]
        return {name: None if g is None else g.astype(self.dtype) for name, g in grads.items()}


class InputGradientIgnoresWeight(ZooBackend):
    """The input gradient is computed as if weight were 1."""
    name = "input-gradient-ignores-weight"
    batchnorm_class = _GradientIgnoresWeight


class _EvalIgnoresRunningMean(NumpyBatchNorm):
    def running_statistics(self):
        mean, var = super().running_statistics()
        return np.zeros_like(mean), var  # right only while running_mean is still near its start


class EvalIgnoresRunningMean(ZooBackend):
    """Eval mode normalizes with running_var but a zero mean: invisible after the few
    warmup calls on zero-mean inputs that were all eval clauses ever saw."""
    name = "eval-ignores-running-mean"
    batchnorm_class = _EvalIgnoresRunningMean


class _AllZeros(NumpyDropout):
    def apply(self, x, keep):
        return np.zeros_like(x)


class DropoutOutputsAllZeros(ZooBackend):
    """Train mode returns all zeros: survivor-scale and mask-values used to skip every
    zero and pass it; drop-rate and the clauses' own exercise requirement catch it."""
    name = "dropout-outputs-all-zeros"
    dropout_class = _AllZeros


class _StateHidden(NumpyBatchNorm):
    def state(self):
        state = super().state()
        return {name: (None if name in ("running_mean", "running_var", "num_batches_tracked") else value)
                for name, value in state.items()}

    def load_state(self, values):
        raise ValueError("this layer keeps its running statistics private")


class RunningStatsHidden(ZooBackend):
    """state() reports no running statistics (and the backend cannot load state):
    state-unchanged used to pass with nothing to watch (None before and after)."""
    name = "running-stats-hidden"
    batchnorm_class = _StateHidden

    def __init__(self):
        super().__init__()
        self.capabilities = dataclasses.replace(self.capabilities, load_state=False)


class _OutputOffByBound(NumpyBatchNorm):
    def normalize(self, x, mean, var):
        y = super().normalize(x, mean, var)
        return y * self.work(1 + 8 * _rtol(x.dtype))  # a few times the output's relative tolerance


def _rtol(dtype) -> float:
    """The batch-norm spec's output rtol for the layer's work dtype (float32 or float64)."""
    return 1e-12 if np.dtype(dtype) == np.float64 else 1e-5


class OutputScaledJustOutsideBound(ZooBackend):
    """The output is scaled by 1 + 8 * rtol: a few times the allowed relative error on
    ordinary inputs. Shows that the output bound is tight enough to catch it."""
    name = "output-just-outside-bound"
    batchnorm_class = _OutputOffByBound


class _RunningOffByBound(NumpyBatchNorm):
    def blend(self, running, batch, factor):
        return super().blend(running, batch, factor) * self.work(1 + 8 * _rtol(running.dtype))


class RunningStatsJustOutsideBound(ZooBackend):
    """Each running-statistics update is scaled by 1 + 8 * rtol: a few times the allowed
    relative error, on ordinary inputs."""
    name = "running-stats-just-outside-bound"
    batchnorm_class = _RunningOffByBound
