"""Group-normalization faults: groups formed wrongly, statistics or affine parameters
kept wrongly, errors, dtypes and gradients. Each overrides one method of the baseline."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.norms_base import NormZooBackend, NumpyGroupNorm, broadcast


class _Interleaved(NumpyGroupNorm):
    def grouped(self, x):
        groups = self.params["num_groups"]
        split = x.reshape((x.shape[0], x.shape[1] // groups, groups) + x.shape[2:])
        return np.moveaxis(split, 2, 1).reshape(x.shape[0], groups, -1)

    def standardize(self, rows, mean, var):
        n, groups = rows.shape[:2]
        y = super().standardize(rows, mean, var)
        return np.moveaxis(y.reshape((n, groups, self.channels() // groups, -1)), 1, 2)


class GroupsInterleaved(NormZooBackend):
    """Channel c is put in group c % num_groups instead of c // (C / num_groups): the
    groups interleave (a strided view taken with the wrong axis order)."""
    name = "groupnorm-groups-interleaved"
    groupnorm_class = _Interleaved


class _PerChannel(NumpyGroupNorm):
    def grouped(self, x):
        return x.reshape(x.shape[0], x.shape[1], -1)


class StatisticsPerChannel(NormZooBackend):
    """Each channel is its own group (instance normalization): num_groups is ignored."""
    name = "groupnorm-statistics-per-channel"
    groupnorm_class = _PerChannel


class _OneGroup(NumpyGroupNorm):
    def grouped(self, x):
        return x.reshape(x.shape[0], 1, -1)


class GroupsIgnored(NormZooBackend):
    """The whole sample is one group (layer normalization over C and the positions)."""
    name = "groupnorm-groups-ignored"
    groupnorm_class = _OneGroup


class _AffinePerGroup(NumpyGroupNorm):
    def affine(self, y):
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is None:
            return y
        width = self.channels() // self.params["num_groups"]
        index = np.arange(self.channels()) // width  # the group of each channel
        y = y * broadcast(weight.astype(self.work)[index], y.ndim)
        return y if bias is None else y + broadcast(bias.astype(self.work)[index], y.ndim)


class AffinePerGroup(NormZooBackend):
    """weight and bias are indexed by group, not by channel: every channel of group g
    takes weight[g] and bias[g]."""
    name = "groupnorm-affine-per-group"
    groupnorm_class = _AffinePerGroup


class _Unbiased(NumpyGroupNorm):
    def statistics(self, rows):
        mean, var = super().statistics(rows)
        count = rows.shape[-1]
        return mean, var * count / max(count - 1, 1)


class UnbiasedGroupVariance(NormZooBackend):
    """The group variance divides by M-1 (torch.var's default) instead of M."""
    name = "groupnorm-unbiased-variance"
    groupnorm_class = _Unbiased


class _EpsOutside(NumpyGroupNorm):
    def standardize(self, x, mean, var):
        return (x - mean) / (np.sqrt(var) + self.work(self.params["eps"]))


class EpsOutsideSqrt(NormZooBackend):
    """(x - mean) / (sqrt(var) + eps): eps added outside the square root."""
    name = "groupnorm-eps-outside-sqrt"
    groupnorm_class = _EpsOutside


class _OnePass(NumpyGroupNorm):
    def statistics(self, rows):
        mean = rows.mean(axis=-1, keepdims=True)
        return mean, np.maximum((rows * rows).mean(axis=-1, keepdims=True) - mean * mean, 0)


class OnePassVariance(NormZooBackend):
    """var = E[x^2] - E[x]^2 in one pass: catastrophic cancellation when the group's
    mean is large against its spread."""
    name = "groupnorm-one-pass-variance"
    groupnorm_class = _OnePass


class _HalfAccumulation(NumpyGroupNorm):
    def statistics(self, rows):
        if self.dtype.itemsize != 2:
            return super().statistics(rows)
        low = rows.astype(self.dtype)
        total = np.zeros(low.shape[:-1] + (1,), self.dtype)
        for column in np.moveaxis(low, -1, 0):  # a sequential sum in the input dtype
            total = (total + column[..., None]).astype(self.dtype)
        mean = (total / self.dtype.type(low.shape[-1])).astype(self.dtype)
        squares = ((low - mean) ** 2).astype(self.dtype).mean(axis=-1, keepdims=True, dtype=self.dtype)
        return mean.astype(self.work), squares.astype(self.work)


class HalfPrecisionAccumulation(NormZooBackend):
    """float16 and bfloat16 group statistics are summed in the input dtype itself."""
    name = "groupnorm-half-precision-accumulation"
    groupnorm_class = _HalfAccumulation


class _RawBuffer(NumpyGroupNorm):
    def working_copy(self, x):
        strides = tuple(int(np.prod(x.shape[i + 1:])) * x.itemsize for i in range(x.ndim))
        raw = np.lib.stride_tricks.as_strided(x, shape=x.shape, strides=strides, writeable=False)
        return raw.astype(self.work)


class StridesIgnored(NormZooBackend):
    """The input's buffer is read as if it were C-contiguous: strided and
    channels-last inputs are misread."""
    name = "groupnorm-strides-ignored"
    groupnorm_class = _RawBuffer


class _ReusesTrainStatistics(NumpyGroupNorm):
    def statistics(self, rows):
        cached = getattr(self, "_cached", None)
        if not self.training and cached is not None and cached[0].shape == rows.shape[:2] + (1,):
            return cached
        self._cached = super().statistics(rows)
        return self._cached


class EvalReusesTrainStatistics(NormZooBackend):
    """In eval mode the group statistics of the last training call are reused (as if
    they were running statistics) when the shapes allow."""
    name = "groupnorm-eval-reuses-train-statistics"
    groupnorm_class = _ReusesTrainStatistics


class _TracksRunning(NumpyGroupNorm):
    def statistics(self, rows):
        groups = rows.shape[1]
        running = getattr(self, "_running", None) or (np.zeros(groups, self.work), np.ones(groups, self.work))
        if not self.training:
            return running[0].reshape(1, groups, 1), running[1].reshape(1, groups, 1)
        mean, var = super().statistics(rows)
        self._running = (0.9 * running[0] + 0.1 * mean.mean(axis=0).ravel(),
                         0.9 * running[1] + 0.1 * var.mean(axis=0).ravel())
        return mean, var


class TracksRunningStatistics(NormZooBackend):
    """Built on a batch-norm code path: training calls keep a running average of
    each group's statistics (momentum 0.1, from 0 and 1), and eval mode uses it."""
    name = "groupnorm-tracks-running-statistics"
    groupnorm_class = _TracksRunning


class _KeepsParameters(NumpyGroupNorm):
    def initial_state(self):
        channels = self.channels()
        return {"weight": np.ones(channels, self.dtype), "bias": np.zeros(channels, self.dtype)}

    def affine(self, y):
        return y if not self.params["affine"] else super().affine(y)


class AffineFalseKeepsParameters(NormZooBackend):
    """With affine=False the layer still creates weight and bias (and ignores them)."""
    name = "groupnorm-affine-false-keeps-parameters"
    groupnorm_class = _KeepsParameters


class _BiasAlways(NumpyGroupNorm):
    def initial_state(self):
        state = super().initial_state()
        if self.params["affine"]:
            state["bias"] = np.zeros(self.channels(), self.dtype)
        return state


class BiasFalseIgnored(NormZooBackend):
    """bias=False is ignored: an affine layer always has a bias."""
    name = "groupnorm-bias-false-ignored"
    groupnorm_class = _BiasAlways


class _Frozen(NumpyGroupNorm):
    trainable = frozenset()


class ParametersNotTrainable(NormZooBackend):
    """weight and bias are registered as buffers, not trainable parameters."""
    name = "groupnorm-parameters-not-trainable"
    groupnorm_class = _Frozen


class IndivisibleAccepted(NormZooBackend):
    """num_channels not divisible by num_groups is accepted at build (the last
    group simply gets the remaining channels)."""
    name = "groupnorm-indivisible-accepted"

    def validate(self, layer, params):
        pass


class _SingleValueRaises(NumpyGroupNorm):
    def check_input(self, x):
        super().check_input(x)
        if x.shape[0] * (x.shape[1] // self.params["num_groups"]) * int(np.prod(x.shape[2:])) == 1:
            raise ValueError(f"expected more than 1 value per channel when training, got input size {x.shape}")


class SingleValueGroupsRaise(NormZooBackend):
    """A batch of one sample whose groups hold a single value raises ValueError, in
    both modes (a batch-norm style check applied to groups)."""
    name = "groupnorm-single-value-groups-raise"
    groupnorm_class = _SingleValueRaises


class _Upcasts(NumpyGroupNorm):
    def forward(self, x):
        out = super().forward(x)
        return out.astype(np.float32) if self.dtype.itemsize == 2 else out


class HalfReturnsFloat32(NormZooBackend):
    """float16 and bfloat16 inputs give a float32 output (left in the work dtype)."""
    name = "groupnorm-half-returns-float32"
    groupnorm_class = _Upcasts


class _WeightGradAsOne(NumpyGroupNorm):
    def reference_backward(self, x, state, training, grad):
        grads = super().reference_backward(x, state, training, grad)
        if state["weight"] is not None:
            as_one = dict(state, weight=np.ones_like(state["weight"]))
            grads["input"] = super().reference_backward(x, as_one, training, grad)["input"]
        return grads


class BackwardIgnoresWeight(NormZooBackend):
    """The input gradient is computed as if weight were 1 (grad_output is not scaled
    by the per-channel weight)."""
    name = "groupnorm-backward-ignores-weight"
    groupnorm_class = _WeightGradAsOne


class _StatsConstant(NumpyGroupNorm):
    def reference_backward(self, x, state, training, grad):
        grads = super().reference_backward(x, state, training, grad)
        rows = x.reshape(x.shape[0], self.params["num_groups"], -1)
        inv_std = 1.0 / np.sqrt(rows.var(axis=-1, keepdims=True) + self.params["eps"])
        g = grad if state["weight"] is None else grad * broadcast(state["weight"], x.ndim)
        grads["input"] = (g.reshape(rows.shape) * inv_std).reshape(x.shape)
        return grads


class BackwardStatisticsConstant(NormZooBackend):
    """The input gradient treats the group mean and variance as constants:
    grad * weight / sqrt(var + eps)."""
    name = "groupnorm-backward-statistics-constant"
    groupnorm_class = _StatsConstant
