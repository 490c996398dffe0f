"""Meta tests for nnconform.moments (the moment-preservation check's statistics): the
alpha dropout model keeps mean 0 and variance 1, the rate function is the Legendre
transform of the exact log-MGF, the test's false-alarm rate stays below alpha (also
with float16 rounding and its slack), and it has the stated power at the stated n.

Fixed seeds, so outcomes are deterministic; tolerances as in test_statistics.py
(Clopper-Pearson at confidence 1 - 1e-6, a binomial miss allowance for power).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from meta_tests.test_statistics import assert_calibrated, assert_power
from nnconform import moments
from nnconform.spec import load_specs

CAL_ALPHA, CAL_RUNS = 0.05, 2000
POW_ALPHA, POW_RUNS, DELTA = 1e-7, 100, 0.05
SPECS = load_specs()
ALPHA_FAMILIES = [c.model for c in SPECS.clauses if c.check == "moment-preservation"]


def alpha_model(p: float) -> tuple[float, float, float]:
    """(dropped, a, b) from the alpha-dropout spec's own [random] formulas."""
    return SPECS.by_id("alpha-dropout.train.moment-preservation").model.random.values({"p": p})


def draw(rng, n, p, dropped, a, b):
    return np.where(rng.random(n) < p, dropped, a * rng.standard_normal(n) + b)


@pytest.mark.parametrize("model", ALPHA_FAMILIES, ids=lambda m: m.name)
@pytest.mark.parametrize("p", [0.0, 1e-7, 0.05, 0.3, 0.5, 0.75, 0.95, 0.99999])
def test_alpha_formulas_keep_mean_zero_and_variance_one(model, p):
    dropped, a, b = model.random.values({"p": p})
    assert dropped == pytest.approx(a * -1.7580993408473766 + b, rel=1e-9, abs=1e-12)
    mean, second = moments.model_moments(p, dropped, a, b)
    assert abs(mean) < 1e-12 and second == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("second", [False, True])
def test_rate_function_is_the_supremum_over_t(second):
    model = (0.5, *alpha_model(0.5))
    limit = 1 / (2 * model[2] ** 2) if second else 30.0
    ts = np.concatenate([np.linspace(-30, 0, 3001), np.linspace(0, limit * (1 - 1e-9), 3001)])
    log_mgf = np.array([moments._log_mgf(t, model, second)[0] for t in ts])
    for u in ((0.5, 0.9, 1.1, 2.0) if second else (-0.3, -0.05, 0.05, 0.4)):
        grid = float(np.max(ts * u - log_mgf))
        exact = moments.rate_function(u, model, second)
        assert grid - 1e-12 <= exact <= grid + 1e-4, (u, grid, exact)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.7])
def test_calibration_on_the_exact_model(p):
    rng, n = np.random.default_rng(11), 400
    values = alpha_model(p)
    rejected = sum(not moments.moment_preservation_test(draw(rng, n, p, *values), p, CAL_ALPHA, *values).passed
                   for _ in range(CAL_RUNS))
    assert_calibrated(rejected, CAL_RUNS, CAL_ALPHA)


def test_calibration_with_float16_rounding_and_its_slack():
    """float16 input and output, computed in float32 (the zoo baseline's way); the slack
    is what the check allows: the input's rounding and 4 unit roundoffs of the terms."""
    rng, n, p = np.random.default_rng(12), 400, 0.5
    dropped, a, b = alpha_model(p)
    rtol = 2.0e-3
    rejected = 0
    for _ in range(CAL_RUNS):
        exact = rng.standard_normal(n)
        x = exact.astype(np.float16).astype(np.float64)
        kept = rng.random(n) >= p
        y = np.where(kept, np.float32(a) * x.astype(np.float32) + np.float32(b), np.float32(dropped))
        y = y.astype(np.float16).astype(np.float64)
        error = rtol * np.maximum(abs(dropped - b) + abs(b), np.abs(a * x) + abs(b)) + a * np.abs(x - exact)
        ideal = np.maximum(np.abs(a * exact + b), abs(dropped))
        slack = (error.sum(), (error * (2 * ideal + error)).sum())
        rejected += not moments.moment_preservation_test(y, p, CAL_ALPHA, dropped, a, b, slack).passed
    assert_calibrated(rejected, CAL_RUNS, CAL_ALPHA)


FAULTS = {
    "mean +delta sd": lambda y, m: y + DELTA * m,
    "mean -delta sd": lambda y, m: y - DELTA * m,
    "second moment x (1 + delta)": lambda y, m: y * math.sqrt(1 + DELTA),
    "second moment x (1 - delta)": lambda y, m: y * math.sqrt(1 - DELTA),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
@pytest.mark.parametrize("p", [0.05, 0.5])
def test_power_at_the_stated_sample_size(fault, p):
    """Each fault the sizing is for is caught with power >= 0.999 at its n, with the
    full slack the sizing allows (SLACK per unit) charged against the test."""
    values = alpha_model(p)
    n = moments.moment_sample_size(p, POW_ALPHA, DELTA, 0.999, *values)
    rng = np.random.default_rng(13)
    slack = (moments.SLACK * n, moments.SLACK * n)
    sd = math.sqrt(moments._variance((p, *values), False))
    missed = sum(moments.moment_preservation_test(FAULTS[fault](draw(rng, n, p, *values), sd), p, POW_ALPHA,
                                                  *values, slack).passed for _ in range(POW_RUNS))
    assert_power(missed, POW_RUNS)


def test_a_correct_sample_at_the_stated_size_passes():
    p, values = 0.5, alpha_model(0.5)
    n = moments.moment_sample_size(p, POW_ALPHA, DELTA, 0.999, *values)
    rng = np.random.default_rng(14)
    assert all(moments.moment_preservation_test(draw(rng, n, p, *values), p, POW_ALPHA, *values).passed
               for _ in range(20))


def test_scale_without_the_alpha_term_is_caught():
    """The zoo fault: a = (1-p)^(-1/2), so the variance is 1 + p alpha'^2 times too large."""
    p, (dropped, a, b) = 0.3, alpha_model(0.3)
    n = moments.moment_sample_size(p, POW_ALPHA, DELTA, 0.999, dropped, a, b)
    wrong_a = (1 - p) ** -0.5
    y = draw(np.random.default_rng(15), n, p, -1.7580993408473766 * wrong_a * (1 - p), wrong_a,
             1.7580993408473766 * wrong_a * p)
    verdict = moments.moment_preservation_test(y, p, POW_ALPHA, dropped, a, b)
    assert not verdict.passed and verdict.p_value <= POW_ALPHA


def test_sample_size_shrinks_with_delta_and_grows_with_p():
    sizes = [moments.moment_sample_size(0.5, POW_ALPHA, d, 0.999, *alpha_model(0.5)) for d in (0.03, 0.05, 0.1)]
    assert sizes[0] > sizes[1] > sizes[2]
    assert (moments.moment_sample_size(0.75, POW_ALPHA, DELTA, 0.999, *alpha_model(0.75))
            > moments.moment_sample_size(0.5, POW_ALPHA, DELTA, 0.999, *alpha_model(0.5)))
    with pytest.raises(ValueError, match="slack"):
        moments.moment_sample_size(0.5, POW_ALPHA, 0.005, 0.999, *alpha_model(0.5))


def test_p_one_is_an_exact_check():
    assert moments.moment_preservation_test(np.zeros(10), 1.0, POW_ALPHA, 0.0, math.nan, math.nan).passed
    verdict = moments.moment_preservation_test(np.array([0.0, 0.5]), 1.0, POW_ALPHA, 0.0, math.nan, math.nan)
    assert not verdict.passed and verdict.alpha == 0.0


def test_non_finite_output_fails_and_verdict_is_consistent():
    values = alpha_model(0.5)
    assert not moments.moment_preservation_test(np.array([0.0, np.nan]), 0.5, POW_ALPHA, *values).passed
    verdict = moments.moment_preservation_test(draw(np.random.default_rng(16), 1000, 0.5, *values), 0.5, 0.01, *values)
    assert verdict.passed == (verdict.p_value > verdict.alpha)
    assert verdict.interval[0] < 0 < verdict.interval[1]
