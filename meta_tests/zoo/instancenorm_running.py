"""Instance-normalization faults in the running statistics: kept, updated or used
wrongly, in either mode. Each overrides one method of the baseline."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.norms_base import NormZooBackend, NumpyInstanceNorm


class _TrainUsesRunning(NumpyInstanceNorm):
    def uses_instance_statistics(self):
        return not self.tracked


class TrainUsesRunningStats(NormZooBackend):
    """A tracking layer normalizes with its running statistics in train mode too."""
    name = "instancenorm-train-uses-running-stats"
    instancenorm_class = _TrainUsesRunning


class _EvalIgnoresRunning(NumpyInstanceNorm):
    def uses_instance_statistics(self):
        return True


class EvalIgnoresRunningStats(NormZooBackend):
    """Eval mode uses instance statistics even when the layer tracks running ones
    (they are updated, never used)."""
    name = "instancenorm-eval-ignores-running-stats"
    instancenorm_class = _EvalIgnoresRunning


class _EvalUpdates(NumpyInstanceNorm):
    def updates_running_statistics(self):
        return self.tracked


class RunningStatsUpdatedInEval(NormZooBackend):
    """Running statistics are updated on every call, in eval mode too."""
    name = "instancenorm-running-stats-updated-in-eval"
    instancenorm_class = _EvalUpdates


class _FrozenAfterEval(NumpyInstanceNorm):
    def eval(self):
        super().eval()
        self.frozen = True

    def updates_running_statistics(self):
        return super().updates_running_statistics() and not getattr(self, "frozen", False)


class FrozenAfterEval(NormZooBackend):
    """After the first switch to eval mode, training calls no longer update the
    running statistics (a flag set by eval() and never cleared)."""
    name = "instancenorm-frozen-after-eval"
    instancenorm_class = _FrozenAfterEval


class _FirstSample(NumpyInstanceNorm):
    def observed(self, mean, var, count):
        return super().observed(mean[:1], var[:1], count)


class RunningStatsFromFirstSample(NormZooBackend):
    """The running statistics observe only the first sample of the batch."""
    name = "instancenorm-running-stats-from-first-sample"
    instancenorm_class = _FirstSample


class _Pooled(NumpyInstanceNorm):
    def observed(self, mean, var, count):
        observed_mean, _ = super().observed(mean, var, count)
        n, c = mean.shape[:2]
        within = var.reshape(n, c).mean(axis=0)
        between = ((mean.reshape(n, c) - observed_mean) ** 2).mean(axis=0)
        total = n * count
        return observed_mean, (within + between) * total / (total - 1)


class RunningVarPooledOverBatch(NormZooBackend):
    """running_var observes the unbiased variance of each channel over the whole batch
    (batch normalization's statistic), which adds the spread between the instances'
    means."""
    name = "instancenorm-running-var-pooled-over-batch"
    instancenorm_class = _Pooled


class _Biased(NumpyInstanceNorm):
    def observed(self, mean, var, count):
        observed_mean, observed_var = super().observed(mean, var, count)
        return observed_mean, observed_var * (count - 1) / count


class BiasedRunningVariance(NormZooBackend):
    """running_var observes the biased instance variances, without declaring the
    'biased' running_var convention."""
    name = "instancenorm-biased-running-variance"
    instancenorm_class = _Biased


class _Inverted(NumpyInstanceNorm):
    def blend(self, running, observed):
        momentum = self.work(self.params["momentum"])
        return momentum * running.astype(self.work) + (1 - momentum) * observed


class InvertedMomentum(NormZooBackend):
    """Keras's convention: running = momentum*running + (1-momentum)*observed."""
    name = "instancenorm-inverted-momentum"
    instancenorm_class = _Inverted


class _VarStartsAtZero(NumpyInstanceNorm):
    def initial_state(self):
        state = super().initial_state()
        if state["running_var"] is not None:
            state["running_var"] = np.zeros_like(state["running_var"])
        return state


class RunningVarStartsAtZero(NormZooBackend):
    """running_var is initialized to zeros like running_mean."""
    name = "instancenorm-running-var-starts-at-zero"
    instancenorm_class = _VarStartsAtZero


class _KeepsBuffers(NumpyInstanceNorm):
    def initial_state(self):
        state = super().initial_state()
        channels = self.channels()
        state["running_mean"] = np.zeros(channels, self.dtype)
        state["running_var"] = np.ones(channels, self.dtype)
        return state

    @property
    def tracked(self):
        return self.params["track_running_stats"]


class UntrackedKeepsBuffers(NormZooBackend):
    """With track_running_stats=False the layer still creates running buffers."""
    name = "instancenorm-untracked-keeps-buffers"
    instancenorm_class = _KeepsBuffers
