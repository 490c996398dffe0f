"""Mode faults: train and eval behaviour mixed up."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, NumpyDropout, ZooBackend


class _EvalDrops(NumpyDropout):
    def eval(self):
        pass


class DropoutEvalStillDrops(ZooBackend):
    """eval() does not reach the dropout layer: it keeps dropping in eval mode."""
    name = "dropout-eval-still-drops"
    dropout_class = _EvalDrops


class _EvalRescales(NumpyDropout):
    def eval_output(self, x):
        return (x.astype(np.float64) * (1.0 - self.p)).astype(x.dtype)


class DropoutEvalRescales(ZooBackend):
    """Eval multiplies by (1-p), the non-inverted convention, while training also
    scales by 1/(1-p): expected values are off by (1-p) in eval."""
    name = "dropout-eval-rescales"
    dropout_class = _EvalRescales


class _EvalBatchStats(NumpyBatchNorm):
    def uses_batch_statistics(self):
        return True


class BatchNormEvalUsesBatchStats(ZooBackend):
    """Eval normalises with the batch statistics instead of the running ones."""
    name = "batchnorm-eval-uses-batch-stats"
    batchnorm_class = _EvalBatchStats


class _EvalUpdates(NumpyBatchNorm):
    def updates_running_statistics(self):
        return self.tracked


class BatchNormEvalUpdatesStats(ZooBackend):
    """Eval calls still update the running statistics (normalising with the
    running values from before the call)."""
    name = "batchnorm-eval-updates-stats"
    batchnorm_class = _EvalUpdates


class _TrainRunning(NumpyBatchNorm):
    def uses_batch_statistics(self):
        return not self.tracked


class BatchNormTrainUsesRunningStats(ZooBackend):
    """Train mode normalises with the running statistics (a frozen-BN setting
    leaking into training), while still updating them."""
    name = "batchnorm-train-uses-running-stats"
    batchnorm_class = _TrainRunning


class _UntrackedEvalDefaults(NumpyBatchNorm):
    def uses_batch_statistics(self):
        return self.training

    def running_statistics(self):
        if self.tracked:
            return super().running_statistics()
        channels = self.params["num_features"]
        return np.zeros(channels, self.work), np.ones(channels, self.work)


class UntrackedEvalUsesInitialStats(ZooBackend):
    """With track_running_stats=False, eval normalises with the initial 0 and 1
    instead of the batch statistics."""
    name = "untracked-eval-uses-initial-stats"
    batchnorm_class = _UntrackedEvalDefaults


class _EvalLatches(NumpyDropout):
    def train(self):
        if not getattr(self, "evaluated", False):
            super().train()

    def eval(self):
        self.evaluated = True
        super().eval()


class DropoutEvalLatches(ZooBackend):
    """Once switched to eval, train() no longer re-enables dropout (the mode flag
    is set on a wrapper and never propagated back)."""
    name = "dropout-eval-latches"
    dropout_class = _EvalLatches


class _FrozenAfterEval(NumpyBatchNorm):
    frozen = False

    def eval(self):
        self.frozen = True
        super().eval()

    def uses_batch_statistics(self):
        return (self.training and not self.frozen) or not self.tracked


class BatchNormFrozenAfterEval(ZooBackend):
    """After the first eval() call, train mode keeps normalising with the running
    statistics (a 'freeze BN' flag set by eval() and never cleared), while still
    updating them."""
    name = "batchnorm-frozen-after-eval"
    batchnorm_class = _FrozenAfterEval
