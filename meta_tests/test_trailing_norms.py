"""The generic pieces the trailing-axis norms (specs/layernorm.toml, specs/rmsnorm.toml)
brought into the core: what eps=None means ([normalization] eps_none), a `raises`
clause that accepts any of several error types, and the tiny-scale value profile."""

from __future__ import annotations

import numpy as np
import pytest

from nnconform.checks import CheckContext, ClauseFailure
from nnconform.checks.exact import raises
from nnconform.family import FamilyError, Normalization, parse_family
from nnconform.spec import load_specs
from nnconform.strategies import VALUE_PROFILES, Case

SPECS = load_specs()


@pytest.mark.parametrize("dtype, eps", [("float16", 2.0**-23), ("bfloat16", 2.0**-23), ("float32", 2.0**-23),
                                        ("float64", 2.0**-52)])
def test_rmsnorm_eps_none_is_the_opmath_epsilon_in_the_error_model(dtype, eps):
    norm = SPECS.by_id("rmsnorm.eps-none").model.normalization
    assert norm.eps_none == "opmath-eps"
    assert norm.eps_value({"eps": None}, dtype) == eps
    assert norm.eps_value({"eps": 1e-3}, dtype) == 1e-3


def test_dtype_eps_means_the_input_dtype_epsilon():
    norm = Normalization("trailing", trailing="normalized_shape", eps_none="dtype-eps")
    assert norm.eps_value({"eps": None}, "float16") == 2.0**-10
    assert norm.eps_value({"eps": None}, "bfloat16") == 2.0**-7


def test_an_unknown_eps_none_meaning_names_the_field():
    clause = SPECS.by_id("rmsnorm.train.output")
    data = {"state": {}, "normalization": {"over": "trailing", "trailing": "normalized_shape", "eps_none": "1e-5"},
            "reference": {"step": "nnconform.reference.rmsnorm:step"}}
    parameters = {"normalized_shape": clause.derived["normalized_shape"]}
    with pytest.raises(FamilyError) as error:
        parse_family("rmsnorm", data, parameters, set())
    assert error.value.field == "normalization.eps_none" and "opmath-eps" in str(error.value)


class _Layer:
    def __init__(self, error):
        self.error = error

    def train(self):
        pass

    def eval(self):
        pass

    def forward(self, x):
        if self.error:
            raise self.error("mismatched input")
        return x


class _Backend:
    name = "fake"

    def __init__(self, error):
        self.error = error

    def build(self, layer, params, dtype):
        return _Layer(self.error)


def _mismatch_context(error) -> CheckContext:
    clause = SPECS.by_id("layernorm.input.shape-mismatch")
    case = Case("LayerNorm", "float32", "train", {"normalized_shape": (9, 3), "eps": 1e-5, "elementwise_affine": False,
                                                 "bias": True}, {"calls": 1, "warmup": 0}, (2, 3), "standard", 0, 0)
    return CheckContext(clause, case, _Backend(error))


@pytest.mark.parametrize("error", [ValueError, RuntimeError])
def test_raises_accepts_every_listed_error_type(error):
    assert SPECS.by_id("layernorm.input.shape-mismatch").options["error"] == ("ValueError", "RuntimeError")
    raises(_mismatch_context(error))


@pytest.mark.parametrize("error, says", [(None, "nothing was raised"), (TypeError, "raised TypeError in forward")])
def test_raises_rejects_no_error_and_an_unlisted_type(error, says):
    with pytest.raises(ClauseFailure, match="expected ValueError or RuntimeError in forward") as failure:
        raises(_mismatch_context(error))
    assert says in str(failure.value)


def test_a_single_error_type_still_loads_as_before():
    assert SPECS.by_id("batchnorm.train.single-value-error").options["error"] == ("ValueError",)


def test_tiny_scale_puts_the_mean_square_below_the_default_eps():
    loc, scale, _ = VALUE_PROFILES["tiny-scale"]
    assert loc == 0 and loc**2 + scale**2 < 1e-5 / 5
    case = Case("RMSNorm", "float16", "train", {"normalized_shape": 8, "eps": None, "elementwise_affine": True},
                {"calls": 1, "warmup": 0}, (64, 8), "tiny-scale", 3, 0)
    x = case.batch(0).astype(np.float64)
    assert np.count_nonzero(x) > 0.9 * x.size, "float16 must not flush tiny-scale values to zero"
    assert 1e-7 < (x * x).mean() < 1e-5


def test_input_gradient_scale_takes_the_largest_elementwise_weight_of_the_slice():
    """Every member's input gradient sums grad * weight over its whole slice, so a member
    whose own weight is tiny may still carry the rounding error of its neighbours' terms."""
    from nnconform.checks.gradients import gradient_error_scales
    from nnconform.checks.reference_checks import statistics_used
    clause = SPECS.by_id("layernorm.grad.reference")
    case = Case("LayerNorm", "float32", "train", {"normalized_shape": (2,), "eps": 1e-5, "elementwise_affine": True,
                                                 "bias": True}, {"calls": 1, "warmup": 0}, (3, 2), "standard", 5, 0)
    ctx = CheckContext(clause, case, backend=None)
    before = {"weight": np.array([1e-6, 3.0]), "bias": np.zeros(2)}
    x = case.batch(0).astype(np.float64)
    stats = statistics_used(ctx, x, before, True)
    scale = gradient_error_scales(ctx, stats, np.ones_like(x), before)["input"]
    np.testing.assert_allclose(scale[:, 0] / scale[:, 1], 1.0)
