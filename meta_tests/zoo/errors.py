"""Error faults: invalid arguments or inputs accepted silently, or the wrong error."""

from __future__ import annotations

from nnconform.backend_api import Capabilities

from meta_tests.zoo.base import NumpyBatchNorm, ZooBackend


class InvalidRateClamped(ZooBackend):
    """p outside [0, 1] is clamped into range instead of rejected."""
    name = "invalid-rate-clamped"

    def build(self, layer, params, dtype):
        if layer == "Dropout":
            params = dict(params, p=min(1.0, max(0.0, params["p"])))
        return super().build(layer, params, dtype)


class RateAboveOneAccepted(ZooBackend):
    """Only negative p is rejected: p > 1 is accepted (and drops everything)."""
    name = "rate-above-one-accepted"

    def validate(self, layer, params):
        if layer == "Dropout" and params["p"] < 0:
            raise ValueError(f"dropout probability must not be negative, got {params['p']}")


class _SilentSingleValue(NumpyBatchNorm):
    def check_input(self, x, count):
        pass


class SingleValueAccepted(ZooBackend):
    """A training batch with one value per channel is accepted: variance 0, and an
    unbiased running variance of 0/0."""
    name = "single-value-accepted"
    batchnorm_class = _SilentSingleValue


class _WrongError(NumpyBatchNorm):
    def check_input(self, x, count):
        if self.training and count <= 1:
            raise RuntimeError(f"batch too small: {x.shape}")


class SingleValueWrongError(ZooBackend):
    """One value per channel raises RuntimeError instead of ValueError."""
    name = "single-value-wrong-error"
    batchnorm_class = _WrongError


class _ValidatedWhenRun:
    """A dropout layer that checks p on its first forward call, as a graph framework does."""

    def __init__(self, layer, p):
        self.layer, self.p = layer, p

    def __getattr__(self, name):
        return getattr(self.layer, name)

    def forward(self, x):
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {self.p}")
        return self.layer.forward(x)


class RateCheckedAtFirstCall(ZooBackend):
    """p outside [0, 1] is rejected only by the first forward call, and the backend does
    not declare the convention (validation = "at-first-call") that allows it."""
    name = "rate-checked-at-first-call"

    def validate(self, layer, params):
        pass

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        return _ValidatedWhenRun(built, params["p"]) if layer == "Dropout" else built


class RateCheckedAtFirstCallDeclared(RateCheckedAtFirstCall):
    """The same layer, declaring validation = "at-first-call": a correct alternative."""
    name = "rate-checked-at-first-call-declared"

    def __init__(self):
        super().__init__()
        self.capabilities = Capabilities(layers=self.capabilities.layers, autograd=True,
                                         conventions={"validation": "at-first-call"})
