"""Faulty alpha dropout (AlphaDropout) and feature alpha dropout (FeatureAlphaDropout):
one realistic fault each. A fault shared by both layers has one backend per family."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo import random_faults as faults
from meta_tests.zoo.random_base import NumpyRandomLayer, RandomZooBackend

SELU_ALPHA = 1.6732632423543772   # SELU's alpha, without SELU's scale 1.0507009873554805


class _SeluAlpha(NumpyRandomLayer):
    def values(self, p):
        if p >= 1.0:
            return 0.0, 0.0, 0.0
        a = ((1.0 - p) * (1.0 + p * SELU_ALPHA ** 2)) ** -0.5
        return -SELU_ALPHA * a * (1.0 - p), a, SELU_ALPHA * a * p


class _NoAlphaTerm(NumpyRandomLayer):
    def values(self, p):
        if p >= 1.0:
            return 0.0, 0.0, 0.0
        a = (1.0 - p) ** -0.5                      # dropout's sqrt, forgetting 1 + p alpha'^2
        return -1.7580993408473766 * a * (1.0 - p), a, 1.7580993408473766 * a * p


class _HalfConstants(NumpyRandomLayer):
    def values(self, p):
        if p >= 1.0:
            return 0.0, 0.0, 0.0
        _, a, b = super().values(p)
        with np.errstate(over="ignore", invalid="ignore"):
            a16, b16 = np.float16(a), np.float16(b)
            return float(np.float16(-1.7580993408473766) * a16 + b16), float(a16), float(b16)


class AlphaSeluAlphaUnscaled(RandomZooBackend):
    """alpha' is SELU's alpha, -1.6733, without SELU's scale: the dropped value and a, b
    are those of the wrong constant (still mean- and variance-preserving)."""
    name = "alpha-selu-alpha-unscaled"
    random_class = _SeluAlpha


class AlphaScaleWithoutAlphaTerm(RandomZooBackend):
    """a = (1-p)^(-1/2), dropout's scale under a square root, forgetting the
    (1 + p alpha'^2) factor: the variance is not kept."""
    name = "alpha-scale-without-alpha-term"
    random_class = _NoAlphaTerm


class AlphaConstantsHeldInHalf(RandomZooBackend):
    """a, b and the dropped value are held in float16 for every dtype: off by up to
    2**-11, and a = inf, the dropped value inf - inf = NaN once (1-p)(1+p alpha'^2) <
    2**-32 (p > 1 - 6e-11)."""
    name = "alpha-constants-held-in-half"
    random_class = _HalfConstants


class AlphaEvalStillDrops(RandomZooBackend):
    """eval() does not reach the alpha dropout layer: it keeps dropping in eval mode."""
    name = "alpha-eval-still-drops"
    random_class = faults.EvalStillDrops


class AlphaEvalLatches(RandomZooBackend):
    """Once switched to eval, train() no longer re-enables alpha dropout."""
    name = "alpha-eval-latches"
    random_class = faults.EvalLatches


class AlphaPZeroMeansDefault(RandomZooBackend):
    """`p = p or 0.5`: p=0 is falsy, so it silently becomes the default rate."""
    name = "alpha-p-zero-means-default"
    random_class = faults.ZeroIsDefault


class AlphaPOneGivesNaN(RandomZooBackend):
    """No special case at p=1: a = 1/sqrt(0) = inf, and a dropped element,
    -alpha*a + alpha*a*p, is inf - inf = NaN."""
    name = "alpha-p-one-gives-nan"
    random_class = faults.NaiveAtOne


class AlphaRateNotValidated(faults.UnvalidatedRate):
    """p outside [0, 1] is clamped into range instead of rejected."""
    name = "alpha-rate-not-validated"


class AlphaHalfReturnsFloat32(RandomZooBackend):
    """Train-mode alpha dropout returns float32 for float16 and bfloat16 inputs."""
    name = "alpha-half-returns-float32"
    random_class = faults.UpcastOutput


class AlphaInplaceIgnored(RandomZooBackend):
    """inplace=True is accepted but the input array is never written (what torch
    2.13's AlphaDropout.forward does: it does not pass inplace on)."""
    name = "alpha-inplace-ignored"
    random_class = faults.IgnoresInplace


class AlphaBackwardIgnoresMask(RandomZooBackend):
    """backward returns a * grad_output everywhere, also for dropped elements, whose
    value is a constant."""
    name = "alpha-backward-ignores-mask"
    random_class = faults.BackwardIgnoresMask


class AlphaRateAsKeepProbability(RandomZooBackend):
    """p is read as the probability of keeping an element."""
    name = "alpha-rate-as-keep-probability"
    random_class = faults.RateAsKeep


class AlphaMaskSharedAcrossCalls(RandomZooBackend):
    """The generator is re-seeded on every call: every call gets the same mask."""
    name = "alpha-mask-shared-across-calls"
    random_class = faults.Reseeded


class FeatureAlphaElementwise(RandomZooBackend):
    """Each element is dropped on its own: AlphaDropout used for FeatureAlphaDropout."""
    name = "feature-alpha-elementwise"
    random_class = faults.ElementUnits


class FeatureAlphaUnbatchedAsBatched(RandomZooBackend):
    """A (C, D, H, W) input without a batch axis is read as (N, C, H, W), so each of
    its channels is split into D units (what torch 2.13 does)."""
    name = "feature-alpha-unbatched-as-batched"
    random_class = faults.UnbatchedAsBatched


class FeatureAlphaScaleWithoutAlphaTerm(AlphaScaleWithoutAlphaTerm):
    """FeatureAlphaDropout with a = (1-p)^(-1/2), forgetting the (1 + p alpha'^2)
    factor: the variance is not kept."""
    name = "feature-alpha-scale-without-alpha-term"


class FeatureAlphaEvalStillDrops(AlphaEvalStillDrops):
    """eval() does not reach the feature alpha dropout layer: it keeps dropping."""
    name = "feature-alpha-eval-still-drops"


class FeatureAlphaEvalLatches(AlphaEvalLatches):
    """Once switched to eval, train() no longer re-enables feature alpha dropout."""
    name = "feature-alpha-eval-latches"


class FeatureAlphaPZeroMeansDefault(AlphaPZeroMeansDefault):
    """FeatureAlphaDropout: `p = p or 0.5` makes p=0 the default rate."""
    name = "feature-alpha-p-zero-means-default"


class FeatureAlphaPOneGivesNaN(AlphaPOneGivesNaN):
    """FeatureAlphaDropout without a special case at p=1: dropped channels are NaN."""
    name = "feature-alpha-p-one-gives-nan"


class FeatureAlphaRateNotValidated(AlphaRateNotValidated):
    """FeatureAlphaDropout clamps p outside [0, 1] instead of rejecting it."""
    name = "feature-alpha-rate-not-validated"


class FeatureAlphaHalfReturnsFloat32(AlphaHalfReturnsFloat32):
    """FeatureAlphaDropout returns float32 for float16 and bfloat16 inputs."""
    name = "feature-alpha-half-returns-float32"


class FeatureAlphaInplaceIgnored(AlphaInplaceIgnored):
    """FeatureAlphaDropout accepts inplace=True but never writes the input (torch 2.13)."""
    name = "feature-alpha-inplace-ignored"


class FeatureAlphaBackwardIgnoresMask(AlphaBackwardIgnoresMask):
    """FeatureAlphaDropout's backward returns a * grad_output in dropped channels too."""
    name = "feature-alpha-backward-ignores-mask"


class FeatureAlphaRateAsKeepProbability(AlphaRateAsKeepProbability):
    """FeatureAlphaDropout reads p as the probability of keeping a channel."""
    name = "feature-alpha-rate-as-keep-probability"


class FeatureAlphaMaskSharedAcrossCalls(AlphaMaskSharedAcrossCalls):
    """FeatureAlphaDropout re-seeds its generator on every call: one mask for all."""
    name = "feature-alpha-mask-shared-across-calls"
