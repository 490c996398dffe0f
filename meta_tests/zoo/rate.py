"""Rate faults: units dropped at a rate other than p."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyDropout, ZooBackend, work_dtype


class _KeepProbability(NumpyDropout):
    def keep_mask(self, shape):
        return self.backend.rng.random(shape) < self.p


class PReadAsKeepProbability(ZooBackend):
    """p read as the keep probability (TensorFlow 1's keep_prob): units are dropped
    with probability 1-p, while the scale stays 1/(1-p)."""
    name = "p-read-as-keep-probability"
    dropout_class = _KeepProbability


class _RateOff(NumpyDropout):
    def keep_mask(self, shape):
        return self.backend.rng.random(shape) >= min(1.0, self.p + 0.02)


class RateOffByTwoPercent(ZooBackend):
    """Units are dropped at p + 0.02: a threshold off by a little."""
    name = "rate-off-by-two-percent"
    dropout_class = _RateOff


class _Clamped(NumpyDropout):
    def keep_mask(self, shape):
        return self.backend.rng.random(shape) >= min(self.p, 0.9)


class HighRateClamped(ZooBackend):
    """The drop rate is clamped at 0.9 ('for numerical safety'): p above 0.9 drops
    only 90% of units, while the scale still uses p."""
    name = "high-rate-clamped"
    dropout_class = _Clamped


class _ThresholdInInputDtype(NumpyDropout):
    def forward(self, x):
        self.dtype = x.dtype
        return super().forward(x)

    def keep_mask(self, shape):
        threshold = float(np.asarray(self.p, dtype=np.float64).astype(self.dtype))
        return self.backend.rng.random(shape) >= threshold


class PRoundedToInputDtype(ZooBackend):
    """The random draws are compared with p rounded to the input's dtype (the
    threshold is a constant of the kernel in the data type): a float16 or bfloat16
    layer drops at p rounded to that dtype, and every unit once p rounds to 1
    (torch.compile's inductor on the CPU, docs/findings.md#torch-compile-dropout-p-rounded)."""
    name = "p-rounded-to-input-dtype"
    dropout_class = _ThresholdInInputDtype


class _ZeroIsDefault(NumpyDropout):
    def __init__(self, params, backend):
        super().__init__(params, backend)
        self.p = self.p or 0.5


class PZeroMeansDefault(ZooBackend):
    """`p = p or 0.5`: p=0 is falsy, so it silently becomes the default rate."""
    name = "p-zero-means-default"
    dropout_class = _ZeroIsDefault


class _OneDisables(NumpyDropout):
    def keep_mask(self, shape):
        return np.ones(shape, dtype=bool) if self.p >= 1.0 else super().keep_mask(shape)

    def scale(self):
        return 1.0 if self.p >= 1.0 else super().scale()


class POneDisablesDropout(ZooBackend):
    """p=1 is treated as 'dropout switched off' and passes the input through."""
    name = "p-one-disables-dropout"
    dropout_class = _OneDisables


class _NaiveScale(NumpyDropout):
    def scale(self):
        return float("inf") if self.p >= 1.0 else super().scale()

    def apply(self, x, keep):
        work = work_dtype(x.dtype)
        with np.errstate(invalid="ignore"):
            return (x.astype(work) * keep * work(self.scale())).astype(x.dtype)


class POneGivesNaN(ZooBackend):
    """The output is x * mask * (1/(1-p)): at p=1 that is 0 * inf = NaN."""
    name = "p-one-gives-nan"
    dropout_class = _NaiveScale
