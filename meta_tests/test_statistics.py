"""Meta tests for nnconform.statistics: calibration (false-alarm rate), power, sample sizes, degenerate p.

Pure numpy simulations with fixed seeds, so the outcomes are deterministic.  Tolerances are themselves
statistically justified: Clopper-Pearson intervals at confidence 1 - 1e-6 for false-alarm rates and a
binomial miss allowance for power, so a correct implementation fails these with probability ~1e-6.
"""
import math
import time

import numpy as np
import pytest
from scipy import stats

from nnconform import statistics as S
from nnconform.statistics import (
    POWER, StatVerdict, agreement_sample_size, agreement_test, bonferroni, detectable_delta,
    dispersion_sample_size, dispersion_test, drop_rate_sample_size, drop_rate_test,
    mean_preservation_sample_size, mean_preservation_test, position_uniformity_sample_size,
    position_uniformity_test, serial_independence_test, serial_sample_size)

CAL_ALPHA = 0.05      # raised alpha so the false-alarm rate is measurable
CAL_RUNS = 2000
POW_ALPHA = 1e-7      # realistic per-decision alpha of the harness
POW_RUNS = 200
P_GRID = (0.05, 0.3, 0.5, 0.9, 0.95)


def cp_interval(k, n, conf=1 - 1e-6):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=conf, method="exact")
    return ci.low, ci.high


def miss_allowance(runs, power=POWER, tail=1e-4):
    """Largest miss count still consistent (at level `tail`) with true power >= `power`."""
    return int(stats.binom.isf(tail, runs, 1 - power))


def assert_calibrated(rejections, runs, alpha, exact_size=None):
    """Observed false-alarm rate not above alpha beyond its CI; for exact tests, consistent with the
    exactly computed size (which must itself be <= alpha)."""
    lo, hi = cp_interval(rejections, runs)
    assert lo <= alpha, f"false-alarm rate {rejections}/{runs} above alpha {alpha} (CP low {lo:.4g})"
    if exact_size is not None:
        assert exact_size <= alpha + 1e-12
        assert lo <= exact_size <= hi, f"{rejections}/{runs} inconsistent with exact size {exact_size:.4g}"


def assert_power(misses, runs):
    assert misses <= miss_allowance(runs), f"{misses}/{runs} faults missed (allowed {miss_allowance(runs)})"


def bernoulli(rng, shape, p):
    return rng.random(shape, dtype=np.float32) < p


# ------------------------------------------------------------------------------------------ calibration
@pytest.mark.parametrize("p", (0.05, 0.3, 0.5, 0.95))
def test_drop_rate_calibration(p):
    rng, n = np.random.default_rng(1), 500
    rej = sum(not drop_rate_test(bernoulli(rng, n, p), p, CAL_ALPHA).passed for _ in range(CAL_RUNS))
    lo, hi = S._minlike_interval(n, p, CAL_ALPHA)
    size = 1 - (stats.binom.cdf(hi, n, p) - stats.binom.cdf(lo - 1, n, p))
    assert size > CAL_ALPHA / 3          # exact test: not far below alpha
    assert_calibrated(rej, CAL_RUNS, CAL_ALPHA, size)


@pytest.mark.parametrize("n,p,alpha", [(500, 0.3, 0.05), (177_204, 0.5, 1e-7), (36_353, 0.05, 1e-9),
                                       (2000, 0.95, 1e-3), (50, 0.01, 1e-2)])
def test_minlike_interval_matches_binomtest(n, p, alpha):
    lo, hi = S._minlike_interval(n, p, alpha)
    pv = lambda k: stats.binomtest(k, n, p).pvalue
    assert pv(lo) > alpha and pv(hi) > alpha
    assert lo == 0 or pv(lo - 1) <= alpha
    assert hi == n or pv(hi + 1) <= alpha


def test_position_uniformity_calibration():
    rng, calls, positions, p = np.random.default_rng(2), 200, 20, 0.3
    rej = sum(not position_uniformity_test(bernoulli(rng, (calls, positions), p), p, CAL_ALPHA).passed
              for _ in range(CAL_RUNS))
    lo, hi = S._minlike_interval(calls, p, CAL_ALPHA / positions)
    accept = stats.binom.cdf(hi, calls, p) - stats.binom.cdf(lo - 1, calls, p)
    assert_calibrated(rej, CAL_RUNS, CAL_ALPHA, 1 - accept ** positions)


@pytest.mark.parametrize("p", (0.1, 0.5))
def test_agreement_calibration(p):
    rng, n = np.random.default_rng(3), 1000
    rej = sum(not agreement_test(bernoulli(rng, n, p), bernoulli(rng, n, p), p, CAL_ALPHA, "x").passed
              for _ in range(CAL_RUNS))
    s = p * p + (1 - p) ** 2
    size = stats.binom.sf(S._upper_crit(n, s, CAL_ALPHA) - 1, n, s)
    assert size > CAL_ALPHA / 2
    assert_calibrated(rej, CAL_RUNS, CAL_ALPHA, size)


@pytest.mark.parametrize("p", (0.1, 0.5))
def test_serial_calibration(p):
    # conservative by design (Bonferroni over lags + union bound): only "not above alpha" is asserted
    rng = np.random.default_rng(4)
    rej = sum(not serial_independence_test(bernoulli(rng, 2000, p), p, CAL_ALPHA).passed
              for _ in range(CAL_RUNS // 2))
    assert_calibrated(rej, CAL_RUNS // 2, CAL_ALPHA)


@pytest.mark.parametrize("p,m", ((0.3, 50), (0.05, 200)))
def test_dispersion_calibration(p, m):
    # Chernoff bound: conservative by design; only "not above alpha" is asserted
    rng = np.random.default_rng(5)
    rej = sum(not dispersion_test(bernoulli(rng, (40, m), p), p, CAL_ALPHA).passed for _ in range(CAL_RUNS))
    assert_calibrated(rej, CAL_RUNS, CAL_ALPHA)


@pytest.mark.parametrize("p", (0.3, 0.5))
def test_mean_preservation_calibration(p):
    rng, n, q = np.random.default_rng(6), 1000, 1 - p
    scale = np.float32(1 / q)     # float32 scaling, as a real dropout kernel does
    rej = sum(not mean_preservation_test(np.where(bernoulli(rng, n, p), 0, scale), p, CAL_ALPHA).passed
              for _ in range(CAL_RUNS))
    lo, hi = S._mean_interval(n, q, CAL_ALPHA)
    size = 1 - (stats.binom.cdf(hi, n, q) - stats.binom.cdf(lo - 1, n, q))
    assert size > CAL_ALPHA / 3
    assert_calibrated(rej, CAL_RUNS, CAL_ALPHA, size)


# ------------------------------------------------------------------------------------------------ power
@pytest.mark.parametrize("p", P_GRID)
@pytest.mark.parametrize("delta", (0.01, -0.01))
def test_drop_rate_power(p, delta):
    n = drop_rate_sample_size(p, POW_ALPHA)
    assert S._drop_rate_power(n, p, POW_ALPHA, 0.01) >= POWER
    rng = np.random.default_rng(7)
    misses = sum(drop_rate_test(bernoulli(rng, n, p + delta), p, POW_ALPHA).passed for _ in range(POW_RUNS))
    assert_power(misses, POW_RUNS)


@pytest.mark.parametrize("p,delta", ((0.05, 0.1), (0.5, -0.1), (0.95, -0.1), (0.3, 0.1)))
def test_position_uniformity_power(p, delta):
    positions = 32
    calls = position_uniformity_sample_size(p, positions, POW_ALPHA)
    rng, rates = np.random.default_rng(8), np.full(positions, p)
    rates[5] = p + delta
    misses = sum(position_uniformity_test(rng.random((calls, positions)) < rates, p, POW_ALPHA).passed
                 for _ in range(POW_RUNS))
    assert_power(misses, POW_RUNS)


def correlated_copy(rng, a, p, rho):
    """Bernoulli(p) mask with correlation rho to `a`: copy a with prob rho, else draw fresh."""
    return np.where(rng.random(a.shape) < rho, a, bernoulli(rng, a.shape, p))


@pytest.mark.parametrize("p", (0.1, 0.5, 0.9))
def test_agreement_power(p):
    n = agreement_sample_size(p, POW_ALPHA)
    rng = np.random.default_rng(9)
    misses = 0
    for _ in range(POW_RUNS):
        a = bernoulli(rng, n, p)
        misses += agreement_test(a, correlated_copy(rng, a, p, 0.05), p, POW_ALPHA, "rows rho 0.05").passed
    assert_power(misses, POW_RUNS)
    # batch rows sharing one mask / same mask on every call: agreement 1, caught once s^n <= alpha
    row = bernoulli(rng, 256, p)
    assert not agreement_test(row, row, p, POW_ALPHA, "across the batch").passed


def markov_mask(rng, n, p, rho):
    """Stationary Bernoulli(p) chain with lag-1 correlation rho: x_i = x_{i-1} w.p. rho, else fresh."""
    fresh = bernoulli(rng, n, p)
    keep = rng.random(n) < rho
    keep[0] = False
    src = np.maximum.accumulate(np.where(keep, 0, np.arange(n)))
    return fresh[src]


@pytest.mark.parametrize("p", (0.3, 0.5))
def test_serial_power_neighbour_correlation(p):
    N = serial_sample_size(p, POW_ALPHA)
    rng = np.random.default_rng(10)
    misses = sum(serial_independence_test(markov_mask(rng, N, p, 0.05), p, POW_ALPHA).passed
                 for _ in range(POW_RUNS))
    assert_power(misses, POW_RUNS)


@pytest.mark.parametrize("p", (0.01, 0.05, 0.5, 0.95, 0.99))
@pytest.mark.parametrize("period", (7, 4096))
def test_serial_power_periodic(p, period):
    rng = np.random.default_rng(11)
    for _ in range(20):
        mask = np.tile(bernoulli(rng, period, p), 20_000 // period + 1)[:20_000]
        v = serial_independence_test(mask, p, POW_ALPHA)
        assert not v.passed, v.describe()


@pytest.mark.parametrize("k", (2, 3, 10, 20, 100))
def test_serial_power_every_kth(k):
    mask = np.zeros(20_000, dtype=bool)
    mask[::k] = True
    p = 1 / k
    assert drop_rate_test(mask, p, POW_ALPHA).passed      # the rate is right: only serial can see it
    assert not serial_independence_test(mask, p, POW_ALPHA).passed


@pytest.mark.parametrize("p", (0.05, 0.3, 0.5, 0.95))
@pytest.mark.parametrize("m", (64, 1000))
def test_dispersion_power_fixed_count(p, m):
    rows = dispersion_sample_size(p, m, POW_ALPHA)
    k = round(p * m)
    rng = np.random.default_rng(12)
    mask = np.argsort(rng.random((rows, m)), axis=1) < k       # exactly k drops per row, random places
    v = dispersion_test(mask, p, POW_ALPHA)
    assert not v.passed, v.describe()
    assert drop_rate_test(mask, p, POW_ALPHA).passed or rows * m < 2000


def test_dispersion_power_overdispersion():
    rng, p, m = np.random.default_rng(13), 0.5, 1000
    rates = np.where(np.arange(200) % 2 == 0, p - 0.1, p + 0.1)[:, None]   # row-wise rate jitter
    assert not dispersion_test(rng.random((200, m)) < rates, p, POW_ALPHA).passed


@pytest.mark.parametrize("p", (0.1, 0.5))
@pytest.mark.parametrize("scale", (1.01, 0.99))
def test_mean_preservation_power(p, scale):
    n = mean_preservation_sample_size(p, POW_ALPHA)
    runs = POW_RUNS
    rng, bad = np.random.default_rng(14), np.float32(scale / (1 - p))
    misses = sum(mean_preservation_test(np.where(bernoulli(rng, n, p), np.float32(0), bad), p,
                                        POW_ALPHA).passed for _ in range(runs))
    assert_power(misses, runs)


# ---------------------------------------------------------------------------------------- sample sizes
def test_drop_rate_sample_size_monotone_and_normal_approx():
    p = 0.5
    ns_alpha = [drop_rate_sample_size(p, a) for a in (1e-5, 1e-7, 1e-9)]
    ns_delta = [drop_rate_sample_size(p, 1e-7, d) for d in (0.005, 0.01, 0.02)]
    assert ns_alpha == sorted(ns_alpha) and ns_delta == sorted(ns_delta, reverse=True)
    for q in P_GRID:
        assert drop_rate_sample_size(q, 1e-9) > drop_rate_sample_size(q, 1e-7)
    za, zb, p1 = stats.norm.isf(1e-7 / 2), stats.norm.isf(1 - POWER), 0.51
    n_norm = ((za * math.sqrt(p * (1 - p)) + zb * math.sqrt(p1 * (1 - p1))) / 0.01) ** 2
    assert abs(drop_rate_sample_size(0.5, 1e-7) - n_norm) / n_norm < 0.05


@pytest.mark.parametrize("p", (0.01, 0.99))
def test_detectable_delta_edges(p):
    n = drop_rate_sample_size(0.5, POW_ALPHA)
    d = detectable_delta(p, n, POW_ALPHA)
    print(f"detectable drop-rate delta at p={p}, n={n}, alpha={POW_ALPHA}: {d:.5f}")
    assert 0 < d < 0.01 and math.isfinite(d)
    assert detectable_delta(0.5, n, POW_ALPHA) == pytest.approx(0.01, rel=0.05)


def test_sample_sizes_fast_and_int():
    fns = [lambda: drop_rate_sample_size(0.37, 3e-8), lambda: position_uniformity_sample_size(0.37, 500, 3e-8),
           lambda: agreement_sample_size(0.37, 3e-8), lambda: serial_sample_size(0.37, 3e-8),
           lambda: dispersion_sample_size(0.37, 4096, 3e-8), lambda: mean_preservation_sample_size(0.37, 3e-8)]
    # Each computation (caches cleared) against a fixed numpy workload timed
    # the same way, so that a loaded machine slows both: a sample size costs less than
    # 20 sorts of 100,000 floats (about 5 ms each quiet), and its best of 3 is taken.
    data = np.random.default_rng(0).random(100_000)
    baseline = min(_seconds(lambda: np.sort(data)) for _ in range(3))
    for i, f in enumerate(fns):
        _clear_caches()
        n = f()
        assert type(n) is int and n > 0
        best = min(_seconds(lambda: (_clear_caches(), f())) for _ in range(3))
        assert best < 20 * baseline, f"sample size #{i}: {best:.4f} s, baseline sort {baseline:.4f} s"


def _seconds(call) -> float:
    t = time.perf_counter()
    call()
    return time.perf_counter() - t


def _clear_caches() -> None:
    """Every lru_cache of the statistics module, so that each timing computes afresh."""
    import nnconform.statistics as module
    for value in vars(module).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def test_bonferroni():
    assert bonferroni(1e-4, 1000) == pytest.approx(1e-7)
    with pytest.raises(ValueError):
        bonferroni(1e-4, 0)


# -------------------------------------------------------------------------------------------- degenerate
@pytest.mark.parametrize("p", (0.0, 1.0))
def test_degenerate_p(p):
    good = np.full((50, 40), p == 1.0)
    bad = good.copy()
    bad[3, 7] = not bad[3, 7]
    for test in (drop_rate_test, position_uniformity_test, dispersion_test, serial_independence_test):
        assert test(good, p, POW_ALPHA).passed
        v = test(bad, p, POW_ALPHA)
        assert not v.passed and isinstance(v, StatVerdict) and v.describe()
    assert agreement_test(good, good, p, POW_ALPHA, "across calls").passed
    assert not agreement_test(good, bad, p, POW_ALPHA, "across calls").passed
    ratio = np.full(100, 0.0 if p == 1.0 else 1.0)
    assert mean_preservation_test(ratio, p, POW_ALPHA).passed
    assert not mean_preservation_test(ratio * 1.01 + (p == 1.0), p, POW_ALPHA).passed
    for f in (drop_rate_sample_size, agreement_sample_size, serial_sample_size, mean_preservation_sample_size):
        assert type(f(p, POW_ALPHA)) is int
    assert type(dispersion_sample_size(p, 100, POW_ALPHA)) is int
    assert type(position_uniformity_sample_size(p, 10, POW_ALPHA)) is int
    assert 0 < detectable_delta(p, 1000, POW_ALPHA) < 0.01


def test_describe_mentions_everything():
    v = drop_rate_test(np.zeros(1000, bool), 0.5, POW_ALPHA)
    text = v.describe()
    assert not v.passed and "FAIL" in text and "0.5" in text and "n=1000" in text and "alpha" in text
