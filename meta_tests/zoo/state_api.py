"""State and API faults: parameters that should not exist, wrong initial values,
swapped roles, and in-place behaviour."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, NumpyDropout, ZooBackend


class _AlwaysAffine(NumpyBatchNorm):
    def initial_state(self):
        state = super().initial_state()
        channels = self.params["num_features"]
        state["weight"], state["bias"] = np.ones(channels, self.dtype), np.zeros(channels, self.dtype)
        return state

    def affine(self, y):
        return y if not self.params["affine"] else super().affine(y)


class AffineFalseKeepsParameters(ZooBackend):
    """affine=False still creates weight and bias (unused, but exposed)."""
    name = "affine-false-keeps-parameters"
    batchnorm_class = _AlwaysAffine


class _Swapped(NumpyBatchNorm):
    def affine(self, y):
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is None:
            return y
        return y * self.broadcast(bias.astype(self.work), y.ndim) + self.broadcast(weight.astype(self.work), y.ndim)


class WeightAndBiasSwapped(ZooBackend):
    """y = x_hat * bias + weight: the affine parameters used in each other's place."""
    name = "weight-and-bias-swapped"
    batchnorm_class = _Swapped


class _UniformWeight(NumpyBatchNorm):
    def initial_state(self):
        state = super().initial_state()
        if state["weight"] is not None:
            rng = np.random.default_rng(self.params["num_features"])
            state["weight"] = rng.uniform(0, 1, state["weight"].shape).astype(self.dtype)
        return state


class WeightInitUniform(ZooBackend):
    """weight initialised from U(0, 1), as torch did before version 1.2."""
    name = "weight-init-uniform"
    batchnorm_class = _UniformWeight


class _Frozen(NumpyBatchNorm):
    trainable = frozenset()


class AffineNotTrainable(ZooBackend):
    """weight and bias are registered as buffers, not trainable parameters."""
    name = "affine-not-trainable"
    batchnorm_class = _Frozen


class _UntrackedBuffers(NumpyBatchNorm):
    def initial_state(self):
        state = super().initial_state()
        if not self.params["track_running_stats"]:
            channels = self.params["num_features"]
            state.update(running_mean=np.zeros(channels, self.dtype), running_var=np.ones(channels, self.dtype),
                         num_batches_tracked=0)
        return state

    def uses_batch_statistics(self):
        return self.training or not self.params["track_running_stats"]

    def updates_running_statistics(self):
        return self.training


class UntrackedKeepsBuffers(ZooBackend):
    """track_running_stats=False still creates and updates running buffers (the
    output uses batch statistics, as it should)."""
    name = "untracked-keeps-buffers"
    batchnorm_class = _UntrackedBuffers


class _IgnoresInplace(NumpyDropout):
    def deliver(self, x, out):
        return out


class InplaceIgnored(ZooBackend):
    """inplace=True is accepted but the input is never written."""
    name = "inplace-ignored"
    dropout_class = _IgnoresInplace


class _AlwaysInplace(NumpyDropout):
    def deliver(self, x, out):
        x[...] = out
        return x


class InputModifiedWhenNotInplace(ZooBackend):
    """The output is always written into the input, even with inplace=False."""
    name = "input-modified-when-not-inplace"
    dropout_class = _AlwaysInplace


class _Float32Buffers(NumpyBatchNorm):
    def initial_state(self):
        return {name: value if value is None or isinstance(value, int) else value.astype(np.float32)
                for name, value in super().initial_state().items()}

    def update_running(self, mean, var, count):
        super().update_running(mean, var, count)
        for name in ("running_mean", "running_var"):
            self.buffers[name] = self.buffers[name].astype(np.float32)


class RunningStatsKeptInFloat32(ZooBackend):
    """Parameters and running statistics are kept in float32 whatever the layer's
    dtype (a float64 layer's statistics lose precision; a float16 one's double its memory)."""
    name = "running-stats-kept-in-float32"
    batchnorm_class = _Float32Buffers


class _CounterHidden(NumpyBatchNorm):
    def state(self):
        return dict(super().state(), num_batches_tracked=None)


class CounterReportedAsNone(ZooBackend):
    """The layer counts its training calls but state() reports num_batches_tracked as
    None, as if the layer kept no counter, without declaring the convention that says so."""
    name = "counter-reported-as-none"
    batchnorm_class = _CounterHidden
