"""Instance-normalization faults: statistics over the wrong axes or with the wrong
formula, state, errors, dtypes and gradients (running-statistics faults are in
instancenorm_running.py). Each overrides one method of the baseline."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.norms_base import NormZooBackend, NumpyInstanceNorm, broadcast


class _OverBatch(NumpyInstanceNorm):
    def instance_statistics(self, batch):
        axes = (0,) + tuple(range(2, batch.ndim))
        mean = batch.mean(axis=axes, keepdims=True)
        var = ((batch - mean) ** 2).mean(axis=axes, keepdims=True)
        shape = (batch.shape[0], batch.shape[1]) + (1,) * (batch.ndim - 2)
        return np.broadcast_to(mean, shape), np.broadcast_to(var, shape)


class StatisticsOverBatch(NormZooBackend):
    """Statistics per channel over the batch and the spatial axes (batch
    normalization), not per instance."""
    name = "instancenorm-statistics-over-batch"
    instancenorm_class = _OverBatch


class _UnbatchedAsOneInstance(NumpyInstanceNorm):
    def instance_statistics(self, batch):
        if self.unbatched:
            axes = tuple(range(1, batch.ndim))
            mean = batch.mean(axis=axes, keepdims=True)
            var = ((batch - mean) ** 2).mean(axis=axes, keepdims=True)
            shape = (1, batch.shape[1]) + (1,) * (batch.ndim - 2)
            return np.broadcast_to(mean, shape), np.broadcast_to(var, shape)
        return super().instance_statistics(batch)

    def as_batch(self, x):
        batch = super().as_batch(x)
        self.unbatched = batch.ndim != x.ndim
        return batch


class UnbatchedNormalizedAsOneInstance(NormZooBackend):
    """An unbatched (C, *spatial) input is normalized over all its values at once, as
    one instance, instead of per channel."""
    name = "instancenorm-unbatched-as-one-instance"
    instancenorm_class = _UnbatchedAsOneInstance


class _Unbiased(NumpyInstanceNorm):
    def instance_statistics(self, batch):
        mean, var = super().instance_statistics(batch)
        count = int(np.prod(batch.shape[2:]))
        return mean, var * count / max(count - 1, 1)


class UnbiasedVarianceNormalizes(NormZooBackend):
    """The output is normalized with the unbiased instance variance (M-1)."""
    name = "instancenorm-unbiased-variance-normalizes"
    instancenorm_class = _Unbiased


class _EpsOutside(NumpyInstanceNorm):
    def standardize(self, x, mean, var):
        return (x - mean) / (np.sqrt(var) + self.work(self.params["eps"]))


class EpsOutsideSqrt(NormZooBackend):
    """(x - mean) / (sqrt(var) + eps): eps added outside the square root."""
    name = "instancenorm-eps-outside-sqrt"
    instancenorm_class = _EpsOutside


class _HalfAccumulation(NumpyInstanceNorm):
    def instance_statistics(self, batch):
        if self.dtype.itemsize != 2:
            return super().instance_statistics(batch)
        low = batch.astype(self.dtype).reshape(batch.shape[:2] + (-1,))
        total = np.zeros(low.shape[:2], self.dtype)
        for column in np.moveaxis(low, -1, 0):  # a sequential sum in the input dtype
            total = (total + column).astype(self.dtype)
        mean = (total / self.dtype.type(low.shape[-1])).astype(self.dtype)[..., None]
        var = ((low - mean) ** 2).astype(self.dtype).mean(axis=-1, keepdims=True, dtype=self.dtype)
        shape = batch.shape[:2] + (1,) * (batch.ndim - 2)
        return mean.astype(self.work).reshape(shape), var.astype(self.work).reshape(shape)


class HalfPrecisionAccumulation(NormZooBackend):
    """float16 and bfloat16 instance statistics are summed in the input dtype itself."""
    name = "instancenorm-half-precision-accumulation"
    instancenorm_class = _HalfAccumulation


class _RawBuffer(NumpyInstanceNorm):
    def working_copy(self, x):
        strides = tuple(int(np.prod(x.shape[i + 1:])) * x.itemsize for i in range(x.ndim))
        raw = np.lib.stride_tricks.as_strided(x, shape=x.shape, strides=strides, writeable=False)
        return raw.astype(self.work)


class StridesIgnored(NormZooBackend):
    """The input's buffer is read as if it were C-contiguous: strided and
    channels-last inputs are misread."""
    name = "instancenorm-strides-ignored"
    instancenorm_class = _RawBuffer


class _KeepsParameters(NumpyInstanceNorm):
    def initial_state(self):
        state = super().initial_state()
        state["weight"] = np.ones(self.channels(), self.dtype)
        state["bias"] = np.zeros(self.channels(), self.dtype)
        return state

    def affine(self, y):
        return y if not self.params["affine"] else super().affine(y)


class AffineFalseKeepsParameters(NormZooBackend):
    """With affine=False the layer still creates weight and bias (and ignores them)."""
    name = "instancenorm-affine-false-keeps-parameters"
    instancenorm_class = _KeepsParameters


class _BiasAlways(NumpyInstanceNorm):
    def initial_state(self):
        state = super().initial_state()
        if self.params["affine"]:
            state["bias"] = np.zeros(self.channels(), self.dtype)
        return state


class BiasFalseIgnored(NormZooBackend):
    """bias=False is ignored: an affine layer always has a bias."""
    name = "instancenorm-bias-false-ignored"
    instancenorm_class = _BiasAlways


class _Frozen(NumpyInstanceNorm):
    trainable = frozenset()


class ParametersNotTrainable(NormZooBackend):
    """weight and bias are registered as buffers, not trainable parameters."""
    name = "instancenorm-parameters-not-trainable"
    instancenorm_class = _Frozen


class _SingleElementAccepted(NumpyInstanceNorm):
    def check_input(self, batch, shape):
        pass


class SingleElementAccepted(NormZooBackend):
    """A training call with one spatial element per instance normalizes to zero
    instead of raising ValueError."""
    name = "instancenorm-single-element-accepted"
    instancenorm_class = _SingleElementAccepted


class _SingleElementRaisesAlways(NumpyInstanceNorm):
    def check_input(self, batch, shape):
        if self.uses_instance_statistics() and int(np.prod(batch.shape[2:])) <= 1:
            raise ValueError(f"expected more than 1 spatial element when training, got input shape {shape}")


class SingleElementRaisesInEval(NormZooBackend):
    """The single-element error is raised whenever instance statistics are used, in
    eval mode without running statistics too."""
    name = "instancenorm-single-element-raises-in-eval"
    instancenorm_class = _SingleElementRaisesAlways


class _Upcasts(NumpyInstanceNorm):
    def forward(self, x):
        out = super().forward(x)
        return out.astype(np.float32) if self.dtype.itemsize == 2 else out


class HalfReturnsFloat32(NormZooBackend):
    """float16 and bfloat16 inputs give a float32 output (left in the work dtype)."""
    name = "instancenorm-half-returns-float32"
    instancenorm_class = _Upcasts


class _StatsConstant(NumpyInstanceNorm):
    def reference_backward(self, x, state, training, grad):
        grads = super().reference_backward(x, state, training, grad)
        if training or state["running_mean"] is None:
            batch, g = self.as_batch(x), self.as_batch(grad)
            inv_std = 1.0 / np.sqrt(batch.var(axis=tuple(range(2, batch.ndim)), keepdims=True) + self.params["eps"])
            g = g if state["weight"] is None else g * broadcast(state["weight"], batch.ndim)
            grads["input"] = (g * inv_std).reshape(x.shape)
        return grads


class BackwardStatisticsConstant(NormZooBackend):
    """The input gradient treats the instance mean and variance as constants:
    grad * weight / sqrt(var + eps)."""
    name = "instancenorm-backward-statistics-constant"
    instancenorm_class = _StatsConstant


class _EvalThroughInstance(NumpyInstanceNorm):
    def reference_backward(self, x, state, training, grad):
        return super().reference_backward(x, state, True, grad)


class EvalBackwardThroughInstanceStats(NormZooBackend):
    """In eval mode with running statistics, backward differentiates as if instance
    statistics had been used (a backward shared with train mode)."""
    name = "instancenorm-eval-backward-through-instance-stats"
    instancenorm_class = _EvalThroughInstance


class _WeightGradAsOne(NumpyInstanceNorm):
    def reference_backward(self, x, state, training, grad):
        grads = super().reference_backward(x, state, training, grad)
        if state["weight"] is not None:
            as_one = dict(state, weight=np.ones_like(state["weight"]))
            grads["input"] = super().reference_backward(x, as_one, training, grad)["input"]
        return grads


class BackwardIgnoresWeight(NormZooBackend):
    """The input gradient is computed as if weight were 1."""
    name = "instancenorm-backward-ignores-weight"
    instancenorm_class = _WeightGradAsOne
