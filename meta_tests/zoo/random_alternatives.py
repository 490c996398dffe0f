"""Correct alternative implementations of the channel and alpha dropout families. Each
differs from the baseline in a way the specs allow, so each must pass every clause."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import work_dtype
from meta_tests.zoo.random_base import ALPHA_PRIME, NumpyRandomLayer, RandomZooBackend


class RandomBaseline(RandomZooBackend):
    """The random families' numpy baseline itself: float32 work for 16- and 32-bit
    inputs, one draw per unit broadcast over the unit's elements."""
    name = "random-baseline"


class _ScaledOnesMask(NumpyRandomLayer):
    def keep_mask(self, shape):
        # A mask of the unit shape drawn as integers against a 2**32 threshold.
        threshold = np.uint64(round(self.p * 2**32))
        draws = self.backend.rng.integers(0, 2**32, size=self.noise_shape(shape), dtype=np.uint64)
        return np.broadcast_to(draws >= threshold, shape)

    def apply(self, x, keep):
        if self.alpha:
            return super().apply(x, keep)
        # Element dropout of a ones tensor of the unit shape, pre-scaled in float32,
        # then one broadcast multiplication: the way channel dropout is often composed.
        work = work_dtype(x.dtype)
        dropped, scale, _ = self.values(self.p)
        unit = keep[tuple(slice(0, n) for n in self.noise_shape(x.shape))]
        mask = unit.astype(work) * work(scale)
        return (x.astype(work) * mask).astype(x.dtype)


class _TorchStyleNoise(_ScaledOnesMask):
    def apply(self, x, keep):
        if not self.alpha:
            return super().apply(x, keep)
        # torch's formulation: b = (noise - 1) * alpha*a + alpha*a*p, then x * (noise * a) + b,
        # in the work dtype, where a dropped unit's value is a difference of two rounded terms.
        work = work_dtype(x.dtype)
        if self.p >= 1.0:
            return (x.astype(work) * work(0)).astype(x.dtype)
        _, a, _ = self.values(self.p)
        alpha = -ALPHA_PRIME
        noise = keep.astype(work)
        b = (noise - work(1)) * work(alpha * a) + work(alpha * a * self.p)
        return (x.astype(work) * (noise * work(a)) + b).astype(x.dtype)


class MaskAsScaledOnes(RandomZooBackend):
    """A different random stream (Philox, integer threshold); channel dropout as a
    pre-scaled float32 ones mask of shape (N, C, 1, ...) broadcast into one
    multiplication; alpha dropout as torch composes it: b = (noise - 1)*alpha*a +
    alpha*a*p and x*(noise*a) + b, a dropped value being the difference of two rounded
    terms."""
    name = "mask-as-scaled-ones"
    random_class = _TorchStyleNoise

    def make_rng(self, seed):
        return np.random.Generator(np.random.Philox(key=seed))
