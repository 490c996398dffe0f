"""The output moments of a random layer: a calibrated test that, for standard-normal
input, the output's mean and second moment are those its [random] model implies
(alpha dropout: mean 0 and variance 1), and the sample size that test needs.

Model of one unit under H0 (one element per unit, so units are independent): with
probability p the unit is dropped and equals the constant ``dropped`` (c); otherwise
it is ``scale * x + shift`` (a x + b) with x ~ N(0, 1). Both statistics, the sum of y
and the sum of y**2 over n units, are sums of n iid terms whose moment generating
functions are exact and closed-form:

    E e^{t y}    = p e^{t c}   + q e^{t b + t^2 a^2 / 2}
    E e^{t y^2}  = p e^{t c^2} + q (1 - 2 t a^2)^{-1/2} e^{t b^2 / (1 - 2 t a^2)}   (t < 1 / (2 a^2))

so each tail gets a rigorous Chernoff bound, P(S >= n u) <= exp(-n I(u)) with I the
rate function (the Legendre transform of the log-MGF): conservative, no normal or
chi-square approximation, as every test in nnconform.statistics. The four tails (two
statistics, two sides) share alpha by Bonferroni (alpha/4 each).

A layer's outputs differ from this ideal model by rounding: its input is x rounded
to its dtype, and each output may be off by the clause tolerance. The caller passes
``slack``, a bound on |observed sum - ideal sum| for each statistic, computed from
the data and the tolerances; every threshold is widened by it, so the false-alarm
bound holds for any conforming layer. The sample size assumes a slack of at most
SLACK per unit (float32 and float64 are far below it; float16 at p <= 0.9 is below it).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import optimize

from nnconform.statistics import StatVerdict, _check, _smallest_n, _z

SLACK = 0.01          # rounding slack per unit the sample size allows, in each statistic's units
_TAILS = 4            # Bonferroni: mean and second moment, each two-sided


def model_moments(p: float, dropped: float, scale: float, shift: float) -> tuple[float, float]:
    """(E y, E y^2) of one unit under the model, for x ~ N(0, 1)."""
    q = 1.0 - p
    mean = p * dropped + (q * shift if q > 0 else 0.0)
    second = p * dropped ** 2 + (q * (scale ** 2 + shift ** 2) if q > 0 else 0.0)
    return mean, second


def _log_mgf(t: float, model: tuple, second: bool) -> tuple[float, float]:
    """(K(t), K'(t)): the log moment generating function of y (or y**2) and its slope."""
    p, c, a, b = model
    q = 1.0 - p
    if second:
        r = 1.0 - 2.0 * t * a * a
        kept = (math.log(q) - 0.5 * math.log(r) + t * b * b / r, a * a / r + b * b / (r * r)) if q > 0 else None
        drop = (math.log(p) + t * c * c, c * c) if p > 0 else None
    else:
        kept = (math.log(q) + t * b + t * t * a * a / 2, b + t * a * a) if q > 0 else None
        drop = (math.log(p) + t * c, c) if p > 0 else None
    parts = [part for part in (kept, drop) if part is not None]
    k = float(np.logaddexp.reduce([w for w, _ in parts]))
    return k, sum(math.exp(w - k) * d for w, d in parts)


def _limit(model: tuple, second: bool) -> float:
    """The largest t where the MGF is finite (y**2 of a Gaussian: 1 / (2 a^2))."""
    return 1.0 / (2.0 * model[2] ** 2) if second and model[0] < 1 else math.inf


@lru_cache(maxsize=4096)
def rate_function(u: float, model: tuple, second: bool) -> float:
    """I(u) = sup_t (t u - K(t)) >= 0: P(S/n >= u) <= exp(-n I(u)) above the mean, and
    P(S/n <= u) <= exp(-n I(u)) below it. An inexact root only lowers I (looser bound)."""
    mean = _log_mgf(0.0, model, second)[1]
    if u == mean:
        return 0.0
    slope = lambda t: _log_mgf(t, model, second)[1] - u
    if u > mean:
        limit = _limit(model, second)
        lo, hi = 0.0, min(1.0, limit / 2)
        while slope(hi) < 0:
            lo, hi = hi, (hi + limit) / 2 if math.isfinite(limit) else hi * 2
            if hi >= limit * (1 - 1e-15) or hi > 1e12:
                return math.inf if hi > 1e12 else hi * u - _log_mgf(hi, model, second)[0]
    else:
        lo, hi = -1.0, 0.0
        while slope(lo) > 0:
            lo, hi = lo * 2, lo
            if lo < -1e12:
                return math.inf   # u lies below the support: impossible under the model
    t = optimize.brentq(slope, lo, hi, xtol=1e-15, rtol=1e-13)
    return max(0.0, t * u - _log_mgf(t, model, second)[0])


def _threshold(n: int, level: float, model: tuple, second: bool, side: float) -> float:
    """The per-unit value u on `side` (+1 above, -1 below the mean) where the Chernoff
    bound exp(-n I(u)) equals `level`."""
    mean = _log_mgf(0.0, model, second)[1]
    target = math.log(1.0 / level) / n
    spread = math.sqrt(max(_variance(model, second), 1e-300))
    step = spread
    while rate_function(mean + side * step, model, second) < target:
        step *= 2
        if step > 1e12 * spread:
            return side * math.inf
    f = lambda d: rate_function(mean + side * d, model, second) - target
    return mean + side * optimize.brentq(f, 0.0, step, xtol=1e-13 * spread, rtol=1e-12)


def _variance(model: tuple, second: bool) -> float:
    p, c, a, b = model
    m1, m2 = model_moments(p, c, a, b)
    if not second:
        return m2 - m1 * m1
    q = 1.0 - p
    fourth = p * c ** 4 + (q * (b ** 4 + 6 * b * b * a * a + 3 * a ** 4) if q > 0 else 0.0)
    return fourth - m2 * m2


def _power(n: int, alpha: float, delta: float, model: tuple, slack: float) -> float:
    """A lower bound on the power against the worst of four faults: the mean shifted by
    +-delta standard deviations, the second moment scaled by 1 +- delta."""
    level = alpha / _TAILS
    m1, m2 = model_moments(*model)
    sd = math.sqrt(max(m2 - m1 * m1, 0.0))
    worst = 1.0
    for second, side in ((False, 1), (False, -1), (True, 1), (True, -1)):
        edge = _threshold(n, level, model, second, side) + side * slack
        if not math.isfinite(edge):
            return 0.0
        # Under the fault the statistic is shifted (mean) or scaled (second moment): the
        # ideal sum must reach `edge` after that, a point on the other side of its mean.
        point = edge - side * delta * sd if not second else edge / (1 + side * delta)
        mean = m2 if second else m1
        if side * (point - mean) >= 0:
            return 0.0
        worst = min(worst, 1.0 - math.exp(-n * rate_function(point, model, second)))
    return worst


@lru_cache(maxsize=1024)
def moment_sample_size(p: float, alpha: float, delta: float, power: float, dropped: float, scale: float,
                       shift: float, slack: float = SLACK) -> int:
    """Units needed so that moment_preservation_test (level alpha) rejects, with at least
    `power` (a rigorous lower bound), an output whose mean is off by delta standard
    deviations or whose second moment is off by a factor 1 +- delta, when the rounding
    slack is at most `slack` per unit."""
    _check(p, alpha, power)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if p >= 1.0:
        return 1000   # every unit is the constant `dropped`: an exact check
    model = (float(p), float(dropped), float(scale), float(shift))
    m1, m2 = model_moments(*model)
    sd = math.sqrt(_variance(model, False))
    if slack >= delta * min(sd, m2):
        raise ValueError(f"a rounding slack of {slack} per unit leaves no room to detect delta {delta}")
    spread = max(1.0, math.sqrt(_variance(model, True)) / m2)
    n0 = ((_z(alpha / _TAILS) + _z(1 - power)) * spread / (delta - slack / min(sd, m2))) ** 2
    return _smallest_n(lambda n: _power(n, alpha, delta, model, slack) if n else 0.0, n0, power)


def moment_preservation_test(y: np.ndarray, p: float, alpha: float, dropped: float, scale: float, shift: float,
                             slack: tuple[float, float] = (0.0, 0.0)) -> StatVerdict:
    """y: one output value per unit (train mode, standard-normal input). H0: the units
    follow the model; slack: bounds on |observed - ideal| of sum(y) and sum(y**2).
    Four Chernoff tail bounds at alpha/4 each; p_value is 4 times the smallest bound (so
    passed == p_value > alpha). At p = 1 every value must be `dropped` (exact check)."""
    _check(p, alpha)
    y = np.asarray(y, dtype=np.float64).ravel()
    n, name = y.size, "output mean and second moment (exact-MGF Chernoff)"
    if n == 0:
        raise ValueError("no output values")
    if p >= 1.0 or not np.all(np.isfinite(y)):
        ok = bool(np.all(np.isfinite(y))) and p >= 1.0 and bool(np.all(y == dropped))
        return StatVerdict(name, ok, 0.0, n, float(np.mean(y)), float(ok),
                           f"every unit {dropped:g} (p={p:g}, deterministic)" if p >= 1.0 else "finite outputs",
                           f"mean {np.mean(y):.6g}", None)
    model = (float(p), float(dropped), float(scale), float(shift))
    m1, m2 = model_moments(*model)
    bounds = []
    for second, observed, room in ((False, float(y.sum()), slack[0]), (True, float((y * y).sum()), slack[1])):
        mean = m2 if second else m1
        for side in (1, -1):
            # the ideal sum lies within `room` of the observed one: judge its nearest value
            point = (observed - side * room) / n
            bounds.append(math.exp(-n * rate_function(point, model, second)) if side * (point - mean) > 0 else 1.0)
    pv = min(1.0, _TAILS * min(bounds))
    level = alpha / _TAILS
    interval = tuple((_threshold(n, level, model, False, side) * n + side * slack[0]) / n for side in (-1, 1))
    return StatVerdict(name, pv > alpha, alpha, n, float(y.mean()), pv,
                       f"mean {m1:.6g} and second moment {m2:.6g} (p={p:g}, standard-normal input)",
                       f"mean {y.mean():.6g}, second moment {(y * y).mean():.6g} over {n} units "
                       f"(rounding slack {slack[0] / n:.2g}, {slack[1] / n:.2g} per unit)", interval,
                       expected_value=m1)
