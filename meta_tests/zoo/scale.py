"""Scale faults: kept units not scaled by 1/(1-p), or scaled by the wrong factor."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyDropout, ZooBackend

LARGE_TENSOR_UNITS = 10_000


class _Unscaled(NumpyDropout):
    def scale(self):
        return 0.0 if self.p >= 1.0 else 1.0


class NoScale(ZooBackend):
    """Kept units pass through unscaled: the 'scale at inference instead' convention
    applied in training (the original paper's formulation)."""
    name = "no-scale"
    dropout_class = _Unscaled


class _TimesKeep(NumpyDropout):
    def scale(self):
        return 1.0 - self.p


class ScaleByKeepProbability(ZooBackend):
    """Kept units multiplied by (1-p) instead of divided by it."""
    name = "scale-by-keep-probability"
    dropout_class = _TimesKeep


class _OverP(NumpyDropout):
    def scale(self):
        return 0.0 if self.p >= 1.0 else 1.0 / max(self.p, 1e-12)


class ScaleByInverseRate(ZooBackend):
    """Kept units scaled by 1/p: the drop probability and the keep probability
    confused in the scale only (identical at p=0.5)."""
    name = "scale-by-inverse-rate"
    dropout_class = _OverP


class _HalfScale(NumpyDropout):
    def scale(self):
        return 0.0 if self.p >= 1.0 else float(np.float16(1.0 / (1.0 - self.p)))


class ScaleHeldInHalf(ZooBackend):
    """The scale 1/(1-p) is stored in float16 for every input dtype (a kernel with
    a half-precision constant): exact at p=0.5, off by up to 2**-11 elsewhere."""
    name = "scale-held-in-half"
    dropout_class = _HalfScale


class _FastPathUnscaled(NumpyDropout):
    def apply(self, x, keep):
        if x.size > LARGE_TENSOR_UNITS and self.p < 1.0:
            return np.where(keep, x, np.zeros_like(x))
        return super().apply(x, keep)


class LargeTensorUnscaled(ZooBackend):
    """A vectorised fast path for tensors of over 10,000 units forgets the scale;
    small tensors are right."""
    name = "large-tensor-unscaled"
    dropout_class = _FastPathUnscaled
