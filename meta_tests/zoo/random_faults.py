"""Faulty versions of the random families' baseline layer, one overridden method each.
The backends that use them, one per family and fault, are in channel_faults.py and
alpha_faults.py."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import work_dtype
from meta_tests.zoo.random_base import NumpyRandomLayer, RandomZooBackend


class ElementUnits(NumpyRandomLayer):
    """One draw per element: the layer's element-wise sibling used by mistake."""

    def noise_shape(self, shape):
        return shape


class UnbatchedAsBatched(NumpyRandomLayer):
    """Every input read as (N, C, ...), also one without a batch axis."""

    def noise_shape(self, shape):
        return shape[:2] + (1,) * (len(shape) - 2) if len(shape) >= 2 else shape


class EvalStillDrops(NumpyRandomLayer):
    def eval(self):
        pass


class EvalRescales(NumpyRandomLayer):
    def eval_output(self, x):
        return (x.astype(np.float64) * (1.0 - self.p)).astype(x.dtype)


class EvalLatches(NumpyRandomLayer):
    def train(self):
        if not getattr(self, "evaluated", False):
            super().train()

    def eval(self):
        self.evaluated = True
        super().eval()


class ZeroIsDefault(NumpyRandomLayer):
    def __init__(self, layer, params, backend):
        super().__init__(layer, dict(params, p=params["p"] or 0.5), backend)


class NaiveAtOne(NumpyRandomLayer):
    """No special case at p = 1: the constants are computed in numpy, 1/(1-p) = inf,
    and the output is x * (mask * scale) + shift, so a dropped unit is 0 * inf."""

    def values(self, p):
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.float64(1.0) - p
            if self.alpha:
                a = (q * (1.0 + p * 1.7580993408473766 ** 2)) ** -0.5
                b = a * 1.7580993408473766 * p
                return -1.7580993408473766 * a + b, a, b
            return 0.0, np.float64(1.0) / q, 0.0

    def apply(self, x, keep):
        work = work_dtype(x.dtype)
        dropped, scale, shift = self.values(self.p)
        with np.errstate(invalid="ignore", over="ignore"):
            noise = keep.astype(work) * work(scale)
            bias = np.where(keep, work(shift), work(dropped))
            return (x.astype(work) * noise + bias).astype(x.dtype)


class UpcastOutput(NumpyRandomLayer):
    def apply(self, x, keep):
        work = work_dtype(x.dtype)
        return super().apply(x, keep).astype(work)


class IgnoresInplace(NumpyRandomLayer):
    def deliver(self, x, out):
        return out


class RedrawsInBackward(NumpyRandomLayer):
    def backward(self, grad_output):
        keep, p = self._last
        if p > 0:
            self._last = (self.keep_mask(grad_output.shape), p)
        return super().backward(grad_output)


class BackwardIgnoresMask(NumpyRandomLayer):
    def backward(self, grad_output):
        _, p = self._last
        return {"input": (grad_output.astype(np.float64) * self.values(p)[1]).astype(grad_output.dtype)}


class RateAsKeep(NumpyRandomLayer):
    def keep_mask(self, shape):
        return np.broadcast_to(self.backend.rng.random(self.noise_shape(shape)) < self.p, shape)


class Reseeded(NumpyRandomLayer):
    def keep_mask(self, shape):
        return np.broadcast_to(np.random.default_rng(1234).random(self.noise_shape(shape)) >= self.p, shape)


class SharedAcrossBatch(NumpyRandomLayer):
    def keep_mask(self, shape):
        units = self.noise_shape(shape)
        if not self.batched(shape):
            return super().keep_mask(shape)
        return np.broadcast_to(self.backend.rng.random((1,) + units[1:]) >= self.p, shape)


class FirstUnitKept(NumpyRandomLayer):
    def keep_mask(self, shape):
        keep = np.array(self.backend.rng.random(self.noise_shape(shape)) >= self.p)
        keep.reshape(-1)[0] = True
        return np.broadcast_to(keep, shape)


class FixedCount(NumpyRandomLayer):
    def keep_mask(self, shape):
        units = self.noise_shape(shape)
        size = int(np.prod(units))
        keep = np.ones(size, dtype=bool)
        keep[self.backend.rng.permutation(size)[:int(round(self.p * size))]] = False
        return np.broadcast_to(keep.reshape(units), shape)


class UnvalidatedRate(RandomZooBackend):
    """Shared by the p-range faults: p outside [0, 1] is clamped, not rejected."""

    def build(self, layer, params, dtype):
        return super().build(layer, dict(params, p=min(1.0, max(0.0, params["p"]))), dtype)
