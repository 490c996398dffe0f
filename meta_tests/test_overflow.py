"""A correctly rounded result beyond a dtype's range is infinite: the reference
comparison must accept that overflow, and still catch a wrong one.

Found by 30 repeated runs: torch's float16 BatchNorm1d in eval mode after a training
call whose batch had zero variance in one channel gave (10088 - 9864) / sqrt(0 + 1e-5)
= 70835, which float16 rounds to inf."""

import numpy as np
import pytest

from nnconform.checks import CheckContext, ClauseFailure
from nnconform.checks.reference_checks import compare_with_reference
from nnconform.spec import load_specs
from nnconform.strategies import Case

CLAUSE = load_specs().by_id("batchnorm.eval.output")


def _context(dtype: str) -> CheckContext:
    case = Case("BatchNorm1d", dtype, "eval",
                {"num_features": 2, "eps": 1e-5, "momentum": None, "affine": True, "track_running_stats": True},
                {"calls": 1, "warmup": 1}, (2, 2), "offset", 0, 0)
    return CheckContext(CLAUSE, case, backend=None)


def _judge(dtype: str, got: list[float], want: list[float]) -> None:
    got_array = np.array(got).astype(np.float16 if dtype == "float16" else np.float32)
    compare_with_reference(_context(dtype), "output", got_array, np.array(want), (np.zeros(2), np.zeros(2)))


def test_inf_is_accepted_where_the_exact_result_overflows_float16():
    _judge("float16", [np.inf, -1.0605], [70835.3, -1.0606])


def test_the_largest_finite_value_is_accepted_there_too():
    _judge("float16", [65504.0, -1.0605], [65510.0, -1.0606])


@pytest.mark.parametrize("got, want, says", [
    ([-np.inf, -1.0605], [70835.3, -1.0606], "differs from the float64 reference"),  # overflow of the wrong sign
    ([np.inf, -1.0605], [60000.0, -1.0606], "non-finite"),                            # inf where float16 holds the value
    ([np.nan, -1.0605], [70835.3, -1.0606], "differs from the float64 reference"),    # NaN is never an overflow
    ([30000.0, -1.0605], [70835.3, -1.0606], "differs from the float64 reference"),   # finite but far below
])
def test_a_wrong_overflow_still_fails(got, want, says):
    with pytest.raises(ClauseFailure, match=says):
        _judge("float16", got, want)


def test_float32_is_unaffected_within_its_range():
    with pytest.raises(ClauseFailure, match="non-finite"):
        _judge("float32", [np.inf, -1.0605], [70835.3, -1.0606])


def test_an_infinity_within_a_bound_wider_than_the_range_is_accepted_on_either_side():
    """Found by repeat run seed 2007: a float16 GroupNorm input gradient of a
    tiny-variance group, eps 1e-12, came out +inf where the reference is -33701 and the
    derived bound (the gradient's conditioning) allows an error of 2.15e6. The bound
    admits values past +65504, so +inf (their rounding) is within it."""
    wide = np.array([1.1e9, 0.0])  # rounding scale: 2 * 2**-10 * 1.1e9, a bound of about 2e6 at the first unit
    got = np.array([np.inf, -1.0605]).astype(np.float16)
    context = _context("float16")
    compare_with_reference(context, "input gradient", got, np.array([-33701.4, -1.0606]), (wide, np.zeros(2)))
    with pytest.raises(ClauseFailure, match="non-finite"):  # a narrow bound: float16 holds -33701, inf is wrong
        compare_with_reference(context, "input gradient", got, np.array([-33701.4, -1.0606]), (np.zeros(2), np.zeros(2)))
