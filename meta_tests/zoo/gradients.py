"""Gradient faults: backward passes that do not differentiate the forward call."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, NumpyDropout, ZooBackend


class _MaskIgnored(NumpyDropout):
    def backward(self, grad_output):
        _, p = self._last
        scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
        return {"input": (grad_output.astype(np.float64) * scale).astype(grad_output.dtype),
                "weight": None, "bias": None}


class DropoutBackwardIgnoresMask(ZooBackend):
    """Backward scales grad_output by 1/(1-p) but does not zero the dropped units."""
    name = "dropout-backward-ignores-mask"
    dropout_class = _MaskIgnored


class _FreshMask(NumpyDropout):
    def backward(self, grad_output):
        self._last = (self.keep_mask(grad_output.shape), self._last[1]) if self.training else self._last
        return super().backward(grad_output)


class DropoutBackwardRedrawsMask(ZooBackend):
    """Backward draws a new mask instead of reusing the forward call's (a
    recomputation that does not restore the generator state)."""
    name = "dropout-backward-redraws-mask"
    dropout_class = _FreshMask


class _BackwardUnscaled(NumpyDropout):
    def backward(self, grad_output):
        keep, _ = self._last
        return {"input": np.where(keep, grad_output, np.zeros_like(grad_output)), "weight": None, "bias": None}


class DropoutBackwardUnscaled(ZooBackend):
    """Backward masks grad_output but forgets the 1/(1-p) scale."""
    name = "dropout-backward-unscaled"
    dropout_class = _BackwardUnscaled


def _normalized(x: np.ndarray, state: dict, params: dict, training: bool):
    axes = (0,) + tuple(range(2, x.ndim))
    if training or state["running_mean"] is None:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = state["running_mean"], state["running_var"]
    inv_std = 1.0 / np.sqrt(NumpyBatchNorm.broadcast(var, x.ndim) + params["eps"])
    return (x - NumpyBatchNorm.broadcast(mean, x.ndim)) * inv_std, inv_std, axes


class _StatsConstant(NumpyBatchNorm):
    def backward(self, grad_output):
        x, state, training = self._last
        g = grad_output.astype(np.float64)
        xhat, inv_std, axes = _normalized(x, state, self.params, training)
        weight = 1.0 if state["weight"] is None else self.broadcast(state["weight"], x.ndim)
        grads = {"input": g * weight * inv_std,
                 "weight": None if state["weight"] is None else (g * xhat).sum(axis=axes),
                 "bias": None if state["bias"] is None else g.sum(axis=axes)}
        return {name: None if v is None else v.astype(self.dtype) for name, v in grads.items()}


class BatchNormBackwardStatsConstant(ZooBackend):
    """Train-mode backward treats the batch mean and variance as constants:
    d input = grad * weight / sqrt(var + eps), the eval-mode formula."""
    name = "batchnorm-backward-stats-constant"
    batchnorm_class = _StatsConstant


class _WeightGradFromInput(NumpyBatchNorm):
    def backward(self, grad_output):
        grads = super().backward(grad_output)
        if grads["weight"] is not None:
            x, _, _ = self._last
            axes = (0,) + tuple(range(2, x.ndim))
            grads["weight"] = (grad_output.astype(np.float64) * x).sum(axis=axes).astype(self.dtype)
        return grads


class BatchNormWeightGradFromInput(ZooBackend):
    """The weight gradient is sum(grad * x) instead of sum(grad * x_hat)."""
    name = "batchnorm-weight-grad-from-input"
    batchnorm_class = _WeightGradFromInput


class _EvalThroughBatch(NumpyBatchNorm):
    def backward(self, grad_output):
        x, state, training = self._last
        if not training:
            self._last = (x, state, True)
        try:
            return super().backward(grad_output)
        finally:
            self._last = (x, state, training)


class BatchNormEvalBackwardThroughBatchStats(ZooBackend):
    """Eval-mode backward differentiates through batch statistics, as if the call
    had been in train mode."""
    name = "batchnorm-eval-backward-through-batch-stats"
    batchnorm_class = _EvalThroughBatch
