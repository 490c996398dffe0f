"""Randomness faults: masks that are not independent Bernoulli(1-p) draws per unit
and per call."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyDropout, ZooBackend

GENERATOR_PERIOD = 4096


class _BatchShared(NumpyDropout):
    def keep_mask(self, shape):
        if len(shape) < 2:
            return super().keep_mask(shape)
        return np.broadcast_to(super().keep_mask((1,) + shape[1:]), shape)


class MaskSharedAcrossBatch(ZooBackend):
    """One mask drawn for the first sample and broadcast over the batch axis."""
    name = "mask-shared-across-batch"
    dropout_class = _BatchShared


class _Reseeded(NumpyDropout):
    def keep_mask(self, shape):
        return np.random.default_rng(1234).random(shape) >= self.p


class MaskSharedAcrossCalls(ZooBackend):
    """The generator is re-seeded with a fixed seed on every call, so every call
    of the same shape gets the same mask."""
    name = "mask-shared-across-calls"
    dropout_class = _Reseeded


class _RowShared(NumpyDropout):
    def keep_mask(self, shape):
        if len(shape) < 2:
            return super().keep_mask(shape)
        rows = super().keep_mask(shape[:1] + (1,) * (len(shape) - 1))
        return np.broadcast_to(rows, shape)


class MaskSharedAcrossPositions(ZooBackend):
    """One draw per sample broadcast over all its positions: whole samples are
    dropped or kept (a spatial-dropout broadcast applied to every axis)."""
    name = "mask-shared-across-positions"
    dropout_class = _RowShared


class _ChannelShared(NumpyDropout):
    def keep_mask(self, shape):
        if len(shape) < 3:
            return super().keep_mask(shape)
        return np.broadcast_to(super().keep_mask(shape[:2] + (1,) * (len(shape) - 2)), shape)


class ChannelDropout(ZooBackend):
    """Drops whole channels (Dropout2d's behaviour) for inputs of rank 3 and more."""
    name = "channel-dropout"
    dropout_class = _ChannelShared


class _Periodic(NumpyDropout):
    def keep_mask(self, shape):
        size = int(np.prod(shape))
        period = self.backend.rng.random(min(size, GENERATOR_PERIOD)) >= self.p
        return np.resize(period, size).reshape(shape)


class PeriodicGenerator(ZooBackend):
    """A generator with a period of 4096 draws: tensors larger than that repeat
    their mask (a weak per-thread LCG state)."""
    name = "periodic-generator"
    dropout_class = _Periodic


class _FixedCount(NumpyDropout):
    def keep_mask(self, shape):
        size = int(np.prod(shape))
        dropped = int(round(self.p * size))
        order = self.backend.rng.permutation(size)
        keep = np.ones(size, dtype=bool)
        keep[order[:dropped]] = False
        return keep.reshape(shape)


class FixedCountPerCall(ZooBackend):
    """Exactly round(p*n) units dropped per call, at random positions: the right
    rate, but no binomial variation in the count."""
    name = "fixed-count-per-call"
    dropout_class = _FixedCount


class _LowDiscrepancy(NumpyDropout):
    def keep_mask(self, shape):
        index = np.arange(int(np.prod(shape)))
        return ((index * 0.6180339887498949) % 1.0 >= self.p).reshape(shape)


class DeterministicPattern(ZooBackend):
    """A deterministic low-discrepancy pattern (golden-ratio sequence) instead of
    random draws: exact rate, no randomness."""
    name = "deterministic-pattern"
    dropout_class = _LowDiscrepancy


class _FirstKept(NumpyDropout):
    def keep_mask(self, shape):
        keep = super().keep_mask(shape)
        keep.reshape(-1)[0] = True
        return keep


class FirstUnitNeverDropped(ZooBackend):
    """An off-by-one in the mask kernel's start index: the first unit of the tensor
    is never dropped."""
    name = "first-unit-never-dropped"
    dropout_class = _FirstKept


class _Antithetic(NumpyDropout):
    def keep_mask(self, shape):
        size = int(np.prod(shape))
        half = self.backend.rng.random((size + 1) // 2)
        uniforms = np.concatenate([half, 1.0 - half])[:size]
        return (uniforms >= self.p).reshape(shape)


class AntitheticHalves(ZooBackend):
    """The second half of the tensor reuses the first half's uniforms as 1-u
    ('antithetic variates' to save draws): the halves are correlated."""
    name = "antithetic-halves"
    dropout_class = _Antithetic
