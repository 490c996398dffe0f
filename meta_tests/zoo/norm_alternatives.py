"""Correct alternative group- and instance-norm implementations. Each differs from
the baseline in a way the specs allow, so each must pass every clause of its family;
a clause that fails one of them is wrong, or its tolerance is."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.norms_base import NormZooBackend, NumpyGroupNorm, NumpyInstanceNorm, broadcast


class Baseline(NormZooBackend):
    """The group- and instance-norm baseline itself: float32 work for 16- and 32-bit
    inputs, state stored in the layer dtype."""
    name = "norm-baseline"


class _FoldedGroupNorm(NumpyGroupNorm):
    def statistics(self, rows):
        """Sums of x and of (x - mean)^2 by a dot product, in another order."""
        count = rows.shape[-1]
        mean = rows.sum(axis=-1, keepdims=True, dtype=np.float64).astype(self.work) / self.work(count)
        centered = rows - mean
        var = np.einsum("ngm,ngm->ng", centered, centered)[..., None] / self.work(count)
        return mean, var

    def standardize(self, rows, mean, var):
        """One per-channel scale and shift, weight and bias folded in, applied as
        x * scale + shift (the form inference kernels use)."""
        n, groups = rows.shape[:2]
        per_group = self.channels() // groups
        inv_std = 1.0 / np.sqrt(var + self.work(self.params["eps"]))  # (N, G, 1)
        scale = np.repeat(inv_std[..., 0], per_group, axis=1)          # (N, C)
        shift = np.repeat((-mean * inv_std)[..., 0], per_group, axis=1)
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is not None:
            scale, shift = scale * weight.astype(self.work), shift * weight.astype(self.work)
        if bias is not None:
            shift = shift + bias.astype(self.work)
        x = rows.reshape(n, self.channels(), -1)
        return (x * scale[..., None] + shift[..., None]).reshape(rows.shape)

    def affine(self, y):
        return y  # folded into standardize


class _FoldedInstanceNorm(NumpyInstanceNorm):
    def standardize(self, batch, mean, var):
        inv_std = 1.0 / np.sqrt(var + self.work(self.params["eps"]))
        scale, shift = inv_std, -mean * inv_std
        weight, bias = self.buffers["weight"], self.buffers["bias"]
        if weight is not None:
            scale, shift = scale * broadcast(weight.astype(self.work), batch.ndim), \
                shift * broadcast(weight.astype(self.work), batch.ndim)
        if bias is not None:
            shift = shift + broadcast(bias.astype(self.work), batch.ndim)
        return batch * scale + shift

    def affine(self, y):
        return y  # folded into standardize

    def instance_statistics(self, batch):
        """Statistics of a channels-last copy, summed in that order."""
        last = np.ascontiguousarray(np.moveaxis(batch, 1, -1))
        flat = last.reshape(batch.shape[0], -1, batch.shape[1])
        mean = flat.mean(axis=1)
        var = ((flat - mean[:, None, :]) ** 2).mean(axis=1)
        shape = batch.shape[:2] + (1,) * (batch.ndim - 2)
        return mean.reshape(shape), var.reshape(shape)


class FoldedScaleShift(NormZooBackend):
    """Statistics summed in another order (a float64 sum and a dot product for groups,
    a channels-last copy for instances), then mean, inverse std, weight and bias
    folded into one per-channel scale and shift, applied as x * scale + shift."""
    name = "norm-folded-scale-shift"
    groupnorm_class = _FoldedGroupNorm
    instancenorm_class = _FoldedInstanceNorm


class _BiasedRunningVariance(NumpyInstanceNorm):
    def observed(self, mean, var, count):
        n, c = mean.shape[:2]
        return mean.reshape(n, c).mean(axis=0), var.reshape(n, c).mean(axis=0)


class DeclaredBiasedRunningVariance(NormZooBackend):
    """running_var averages the biased instance variances, and the backend declares
    the spec's 'biased' running_var convention."""
    name = "norm-declared-biased-running-variance"
    conventions = {"running_var": "biased"}
    instancenorm_class = _BiasedRunningVariance
