"""Faulty channel dropout (Dropout1d, Dropout2d, Dropout3d): one realistic fault each."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo import random_faults as faults
from meta_tests.zoo.random_base import NumpyRandomLayer, RandomZooBackend


class ChannelElementwise(RandomZooBackend):
    """Each element is dropped on its own, as plain Dropout does: the layer's
    element-wise sibling used for channel dropout."""
    name = "channel-elementwise"
    random_class = faults.ElementUnits


class _ElementwiseFor3d(NumpyRandomLayer):
    def noise_shape(self, shape):
        return shape if self.layer == "Dropout2d" and len(shape) == 3 else super().noise_shape(shape)


class Dropout2dElementwiseFor3d(RandomZooBackend):
    """Dropout2d falls back to element-wise dropout for inputs that are not 4-D (what
    torch's deprecation warning for other ranks suggests), so a 3-D (N, C, L) input
    loses whole channels no more."""
    name = "dropout2d-elementwise-for-3d"
    random_class = _ElementwiseFor3d


class _ThreeDAsImage(NumpyRandomLayer):
    def noise_shape(self, shape):
        if self.layer == "Dropout2d" and len(shape) == 3:
            return shape[:1] + (1, 1)
        return super().noise_shape(shape)


class Dropout2d3dAsUnbatched(RandomZooBackend):
    """Dropout2d reads a 3-D input as one (C, H, W) image without a batch axis (the
    interpretation torch announces for a future release), so all channels of a sample
    share one fate."""
    name = "dropout2d-3d-as-unbatched"
    random_class = _ThreeDAsImage


class ChannelUnbatchedAsBatched(RandomZooBackend):
    """An input without a batch axis is read as (N, C, ...): the channels of a (C, L)
    input are split into one unit per element of L."""
    name = "channel-unbatched-as-batched"
    random_class = faults.UnbatchedAsBatched


class _Unscaled(NumpyRandomLayer):
    def values(self, p):
        return 0.0, 0.0 if p >= 1.0 else 1.0, 0.0


class ChannelNoScale(RandomZooBackend):
    """Kept channels pass through unscaled (the scale-at-inference convention)."""
    name = "channel-no-scale"
    random_class = _Unscaled


class _HalfScale(NumpyRandomLayer):
    def values(self, p):
        dropped, scale, shift = super().values(p)
        with np.errstate(over="ignore"):
            return dropped, float(np.float16(scale)), shift


class ChannelScaleHeldInHalf(RandomZooBackend):
    """The scale 1/(1-p) is held in float16 for every dtype: off by up to 2**-11, and
    infinite above p = 0.9999847 (1/(1-p) > 65504)."""
    name = "channel-scale-held-in-half"
    random_class = _HalfScale


class ChannelEvalRescales(RandomZooBackend):
    """Eval multiplies by (1-p), the non-inverted convention, while training also
    scales by 1/(1-p)."""
    name = "channel-eval-rescales"
    random_class = faults.EvalRescales


class ChannelEvalLatches(RandomZooBackend):
    """Once switched to eval, train() no longer re-enables channel dropout."""
    name = "channel-eval-latches"
    random_class = faults.EvalLatches


class ChannelPZeroMeansDefault(RandomZooBackend):
    """`p = p or 0.5`: p=0 is falsy, so it silently becomes the default rate."""
    name = "channel-p-zero-means-default"
    random_class = faults.ZeroIsDefault


class ChannelPOneGivesNaN(RandomZooBackend):
    """The output is x * (mask * 1/(1-p)): at p=1 that is x * (0 * inf) = NaN."""
    name = "channel-p-one-gives-nan"
    random_class = faults.NaiveAtOne


class ChannelRateNotValidated(faults.UnvalidatedRate):
    """p outside [0, 1] is clamped into range instead of rejected."""
    name = "channel-rate-not-validated"


class ChannelHalfReturnsFloat32(RandomZooBackend):
    """Train-mode channel dropout returns float32 for float16 and bfloat16 inputs."""
    name = "channel-half-returns-float32"
    random_class = faults.UpcastOutput


class ChannelInplaceIgnored(RandomZooBackend):
    """inplace=True is accepted but the input array is never written."""
    name = "channel-inplace-ignored"
    random_class = faults.IgnoresInplace


class ChannelBackwardRedrawsMask(RandomZooBackend):
    """backward draws a fresh channel mask instead of reusing the forward call's."""
    name = "channel-backward-redraws-mask"
    random_class = faults.RedrawsInBackward


class ChannelRateAsKeepProbability(RandomZooBackend):
    """p is read as the probability of keeping a channel."""
    name = "channel-rate-as-keep-probability"
    random_class = faults.RateAsKeep


class ChannelFirstNeverDropped(RandomZooBackend):
    """An off-by-one in the mask kernel: the first channel of the first sample is never
    dropped."""
    name = "channel-first-never-dropped"
    random_class = faults.FirstUnitKept


class ChannelMaskSharedAcrossBatch(RandomZooBackend):
    """One channel mask is drawn for the first sample and broadcast over the batch."""
    name = "channel-mask-shared-across-batch"
    random_class = faults.SharedAcrossBatch


class ChannelMaskSharedAcrossCalls(RandomZooBackend):
    """The generator is re-seeded on every call: every call gets the same mask."""
    name = "channel-mask-shared-across-calls"
    random_class = faults.Reseeded


class ChannelFixedCountPerCall(RandomZooBackend):
    """Exactly round(p*n) of the n channels are dropped per call, at random positions."""
    name = "channel-fixed-count-per-call"
    random_class = faults.FixedCount
