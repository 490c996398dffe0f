"""Statistical decisions for dropout-mask conformance (pure numpy + scipy.stats, no torch).

Every test answers "is this mask consistent with iid Bernoulli(p) drops?" with a false-alarm rate
bounded by the caller's ``alpha`` and a stated power at a stated effect size, reached at the size the
matching ``*_sample_size`` function returns.  WHY exact methods: the harness runs ~1000 decisions at
alpha ~1e-7..1e-9, where normal/chi-square approximations are off by large factors in the tails.  So
we use exact binomial tails where the null law is binomial, and otherwise rigorous bounds (union bound,
Chernoff with the exact moment generating function) that can only make a test conservative.

Conventions: masks are bool arrays, True = unit dropped.  H0: each unit is dropped independently with
probability p.  A test that makes several internal decisions splits its alpha by Bonferroni and reports a
Bonferroni-adjusted p_value, so ``passed == (p_value > alpha)`` always holds.  For p in {0, 1} the mask
is deterministic under H0: tests are exact checks with alpha 0 (independence is then vacuous).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import fft as sfft
from scipy import optimize, special, stats

POWER = 0.999          # default power target
GUARANTEED_RATES = (0.05, 0.95)  # drop rates where the rate-error guarantee holds
RATE_DELTA = 0.01      # default detectable drop-rate error
_DEGENERATE_N = 1000   # sample size for p in {0, 1}: the check is deterministic there
_SHORT_LAGS = 8        # serial test: lags 1.._SHORT_LAGS get their own alpha share and power guarantee
_SCREEN = 32           # serial test: long lags given the exact tail bound (largest |z| first)
_binom = stats.binom


@dataclass(frozen=True)
class StatVerdict:
    test: str
    passed: bool
    alpha: float
    n: int
    statistic: float
    p_value: float
    expected: str
    observed: str
    interval: tuple[float, float] | None
    # The value the statistic takes under the null, on the interval's scale: what a plot of
    # the decision draws the observed statistic against (None where there is no interval).
    expected_value: float | None = None

    def describe(self) -> str:
        iv = "" if self.interval is None else (
            f"; acceptance interval [{self.interval[0]:.6g}, {self.interval[1]:.6g}]")
        return (f"[{'PASS' if self.passed else 'FAIL'}] {self.test}: observed {self.observed}; "
                f"expected {self.expected}{iv}\n    n={self.n}, statistic={self.statistic:.6g}, "
                f"alpha={self.alpha:.3g}, p-value={self.p_value:.3g}")


def bonferroni(total_alpha: float, decisions: int) -> float:
    """Per-decision alpha so that `decisions` decisions together false-alarm with prob <= total_alpha."""
    if not 0.0 < total_alpha < 1.0 or int(decisions) < 1:
        raise ValueError(f"need 0 < total_alpha < 1 and decisions >= 1, got {total_alpha}, {decisions}")
    return total_alpha / int(decisions)


def _check(p: float, alpha: float, power: float = 0.5) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")


def _z(tail: float) -> float:
    return float(stats.norm.isf(tail))


def _degenerate(test: str, p: float, arrays, n: int, note: str = "") -> StatVerdict:
    """p in {0, 1}: under H0 every mask is all-False / all-True, so this is an exact check (alpha 0)."""
    target = p == 1.0
    bad = sum(int(np.count_nonzero(np.asarray(a) != target)) for a in arrays)
    word = "every unit dropped" if target else "no unit dropped"
    return StatVerdict(test, bad == 0, 0.0, n, float(bad), float(bad == 0),
                       f"{word} (p={p:g}, deterministic){note}",
                       f"{bad} unit(s) violate it" + (note if bad == 0 else ""), None)


def _smallest_n(power_at, n0: float, target: float, n_max: int = 10**10) -> int:
    """Smallest n with power_at(n) >= target on a bracket-and-bisect path started at the normal-
    approximation n0.  Power of a discrete test is a slightly saw-toothed function of n, so the returned
    n is one where the exact power has been verified, not a claim about all larger n."""
    n, step = max(1, math.ceil(n0)), 0.02
    good, bad = (n, None) if power_at(n) >= target else (None, n)
    while good is None:                         # grow geometrically until the power is reached
        n, step = math.ceil(bad * (1 + step)), step * 2
        if n > n_max:
            raise ValueError("effect not detectable with n <= 1e10")
        good, bad = (n, bad) if power_at(n) >= target else (None, n)
    while bad is None:                          # shrink geometrically until it is lost (n=0 sees nothing)
        n, step = int(good / (1 + step)), step * 2
        good, bad = (good, n) if n == 0 or power_at(n) < target else (n, None)
    while good - bad > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if power_at(mid) >= target else (good, mid)
    return int(good)


def _upper_crit(n: int, s: float, a: float) -> int:
    """Smallest k with P(K >= k) <= a for K ~ Binomial(n, s) (n + 1 if none)."""
    k = int(_binom.isf(a, n, s)) + 1
    while k > 0 and _binom.sf(k - 2, n, s) <= a:
        k -= 1
    while k <= n and _binom.sf(k - 1, n, s) > a:
        k += 1
    return k


def _lower_crit(n: int, s: float, a: float) -> int:
    """Largest k with P(K <= k) <= a for K ~ Binomial(n, s) (-1 if none)."""
    k = int(_binom.ppf(a, n, s))
    while k >= 0 and _binom.cdf(k, n, s) > a:
        k -= 1
    while k < n and _binom.cdf(k + 1, n, s) <= a:
        k += 1
    return k


@lru_cache(maxsize=8192)
def _minlike_interval(n: int, p: float, alpha: float) -> tuple[int, int]:
    """Acceptance region [lo, hi] of counts for scipy's two-sided binomtest at level alpha.

    scipy's p-value of k sums pmf(j) over all j with pmf(j) <= pmf(k)(1 + 1e-7); we evaluate it for every
    k in a window holding all but alpha*2e-6 of the mass (the outside mass is added to every p-value), so
    the region matches binomtest except when a p-value lies within that margin of alpha."""
    w = alpha * 1e-6
    ks = np.arange(max(0, int(_binom.ppf(w, n, p))), min(n, int(_binom.isf(w, n, p))) + 1)
    lp = _binom.logpmf(ks, n, p)
    outside = _binom.cdf(ks[0] - 1, n, p) + _binom.sf(ks[-1], n, p)
    srt = np.sort(lp)
    pv = np.cumsum(np.exp(srt))[np.searchsorted(srt, lp + math.log1p(1e-7), side="right") - 1] + outside
    acc = ks[pv > alpha]
    return int(acc[0]), int(acc[-1])


def _rate_alternatives(p: float, delta: float) -> tuple[float, ...]:
    return tuple(sorted({min(1.0, p + delta), max(0.0, p - delta)}))


def _drop_rate_power(n: int, p: float, alpha: float, delta: float) -> float:
    """Exact power of drop_rate_test at n against the worse of the true rates p +- delta."""
    lo, hi = _minlike_interval(n, p, alpha)
    return min(_binom.cdf(lo - 1, n, p1) + _binom.sf(hi, n, p1) for p1 in _rate_alternatives(p, delta))


@lru_cache(maxsize=1024)
def drop_rate_sample_size(p: float, alpha: float, delta: float = RATE_DELTA, power: float = POWER) -> int:
    """Units needed so drop_rate_test (level alpha) rejects a true rate p+delta AND p-delta (clipped to
    [0, 1]) each with probability >= power; exact binomial power, normal-approximation start."""
    _check(p, alpha, power)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if p in (0.0, 1.0):
        return _DEGENERATE_N
    if not GUARANTEED_RATES[0] <= p <= GUARANTEED_RATES[1]:
        # At edge rates a rate off by delta may be undetectable (p - delta < 0), so draw
        # the largest n of the guaranteed range (that of p = 0.5) and let
        # detectable_delta state what that n catches.
        return drop_rate_sample_size(0.5, alpha, delta, power)
    za, zb = _z(alpha / 2), _z(1 - power)
    n0 = max(((za * math.sqrt(p * (1 - p)) + zb * math.sqrt(p1 * (1 - p1))) / abs(p1 - p)) ** 2
             for p1 in _rate_alternatives(p, delta))
    return _smallest_n(lambda n: _drop_rate_power(n, p, alpha, delta), n0, power)


def detectable_delta(p: float, n: int, alpha: float, power: float = POWER) -> float:
    """Smallest |delta| such that drop_rate_test on n units rejects both p+delta and p-delta with the
    given power (exact; math.inf if one direction is undetectable even at rate 0 or 1).  Used to
    document what the suite can see at edge rates (p < 0.05 or > 0.95)."""
    _check(p, alpha, power)
    if p in (0.0, 1.0):   # deterministic check: caught iff any of n units flips
        return 1.0 - (1.0 - power) ** (1.0 / n)
    lo, hi = _minlike_interval(int(n), p, alpha)

    def pw(p1):
        return _binom.cdf(lo - 1, n, p1) + _binom.sf(hi, n, p1) - power

    out = 0.0
    for sign, room in ((1.0, 1.0 - p), (-1.0, p)):
        if pw(p + sign * room) < 0:
            return math.inf
        out = max(out, optimize.brentq(lambda d: pw(p + sign * d), 0.0, room, xtol=1e-12))
    return out


def drop_rate_test(dropped: np.ndarray, p: float, alpha: float) -> StatVerdict:
    """H0: count of drops ~ Binomial(n, p).  Exact two-sided binomial test (scipy.stats.binomtest,
    minimum-likelihood p-value), false-alarm rate <= alpha exactly.  Power >= POWER against a rate off by
    RATE_DELTA at n = drop_rate_sample_size(p, alpha) (verified exactly there).  Interval: accepted drop rates."""
    _check(p, alpha)
    d = np.asarray(dropped, dtype=bool)
    n, k = d.size, int(np.count_nonzero(d))
    name = "exact binomial drop rate"
    if n == 0:
        raise ValueError("empty mask")
    if p in (0.0, 1.0):
        return _degenerate(name, p, [d], n)
    try:
        pv = float(stats.binomtest(k, n, p).pvalue)
    except OverflowError:
        # boost's binomial pmf overflows for p within a few hundred ulps of the smallest
        # normal double (about 6e-309 to 2e-306) once n >= ~1000. There n*p < 1e-300, so
        # the pmf decreases from k = 0 and the minimum-likelihood p-value is P(K >= k).
        pv = 1.0 if k == 0 else float(_binom.sf(k - 1, n, p))
    lo, hi = _minlike_interval(n, p, alpha)
    return StatVerdict(name, pv > alpha, alpha, n, k / n, pv, f"drop rate {p:g}",
                       f"drop rate {k / n:.6g} ({k}/{n})", (lo / n, hi / n), expected_value=p)


def position_uniformity_sample_size(p: float, positions: int, alpha: float, delta: float = 0.1,
                                    power: float = POWER) -> int:
    """Calls needed so ONE position whose rate is off by delta is caught with the given power: exactly
    the drop-rate size at the per-position level alpha/positions (other positions only add power)."""
    return drop_rate_sample_size(p, bonferroni(alpha, positions), delta, power)


def position_uniformity_test(dropped: np.ndarray, p: float, alpha: float) -> StatVerdict:
    """dropped: (calls, positions).  H0: each position's drop count ~ Binomial(calls, p), independently.
    Exact two-sided binomial test per position at alpha/positions (Bonferroni over positions; the
    extremes are the min and max counts, so only they need p-values).  Catches masks favouring positions;
    power as position_uniformity_sample_size states.  statistic/interval: rate of the most deviant
    position / accepted per-position rates."""
    _check(p, alpha)
    d = np.asarray(dropped, dtype=bool)
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"expected a non-empty (calls, positions) mask, got shape {d.shape}")
    calls, positions = d.shape
    name = "per-position exact binomial uniformity"
    if p in (0.0, 1.0):
        return _degenerate(name, p, [d], calls)
    a = bonferroni(alpha, positions)
    counts = d.sum(axis=0)
    cands = {int(np.argmin(counts)), int(np.argmax(counts))}
    pvs = {j: float(stats.binomtest(int(counts[j]), calls, p).pvalue) for j in cands}
    j = min(pvs, key=pvs.get)
    lo, hi = _minlike_interval(calls, p, a)
    rate = counts[j] / calls
    return StatVerdict(name, pvs[j] > a, alpha, calls, float(rate), min(1.0, pvs[j] * positions),
                       f"drop rate {p:g} at each of {positions} positions (per-position alpha {a:.3g})",
                       f"position {j}: drop rate {rate:.6g} ({counts[j]}/{calls})", (lo / calls, hi / calls),
                       expected_value=p)


def _agree(p: float, rho: float = 0.0) -> tuple[float, float]:
    """P(agree) for two Bernoulli(p) masks: s = p^2+q^2 if independent, s + 2 rho p q if correlated rho."""
    s = p * p + (1 - p) * (1 - p)
    return s, s + 2 * rho * p * (1 - p)


@lru_cache(maxsize=1024)
def agreement_sample_size(p: float, alpha: float, rho: float = 0.05, power: float = POWER) -> int:
    """Independent pairs needed so agreement_test rejects pairs with mask correlation rho (agreement
    probability s + 2 rho p q) with the given power; exact binomial power."""
    _check(p, alpha, power)
    if p in (0.0, 1.0):
        return _DEGENERATE_N
    s, s1 = _agree(p, rho)
    n0 = ((_z(alpha) * math.sqrt(s * (1 - s)) + _z(1 - power) * math.sqrt(s1 * (1 - s1))) / (s1 - s)) ** 2
    return _smallest_n(lambda n: _binom.sf(_upper_crit(n, s, alpha) - 1, n, s1), n0, power)


def agreement_test(a: np.ndarray, b: np.ndarray, p: float, alpha: float, what: str) -> StatVerdict:
    """a, b: masks of paired units.  H0: pairs independent, so #agreements ~ Binomial(n, p^2 + q^2)
    exactly.  One-sided exact upper-tail test (correlated / shared / frozen masks agree MORE), false-alarm
    <= alpha exactly; power per agreement_sample_size; a shared or frozen mask (all pairs agree) is caught
    with certainty once (p^2+q^2)^n <= alpha.  Interval: accepted agreement rates."""
    _check(p, alpha)
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need equal non-empty shapes, got {a.shape} and {b.shape}")
    n, name = a.size, f"exact binomial mask agreement {what}"
    if p in (0.0, 1.0):
        return _degenerate(name, p, [a, b], n, "; independence vacuous")
    s = _agree(p)[0]
    k = int(np.count_nonzero(a == b))
    pv = float(_binom.sf(k - 1, n, s))
    u = _upper_crit(n, s, alpha)
    return StatVerdict(name, pv > alpha, alpha, n, k / n, pv,
                       f"agreement rate p^2+q^2 = {s:.6g} (independent masks)",
                       f"agreement rate {k / n:.6g} ({k}/{n} pairs)", (0.0, (u - 1) / n), expected_value=s)


def _class_sizes(N: int, L):
    """Pairs (i, i+L), i < N-L, split by parity of i // L into classes A (even) and B (odd).  Within a
    class the pairs are DISJOINT (i in even blocks, i+L in odd blocks, or vice versa), so each class's
    agreement count is exactly Binomial(size, p^2+q^2) under H0.  Returns (size_A, size_B)."""
    L = np.asarray(L, dtype=np.int64)
    M = N - L
    f, r = M // L, M % L
    mA = (f + 1) // 2 * L + np.where(f % 2 == 0, r, 0)
    return mA, M - mA


@lru_cache(maxsize=1024)
def serial_sample_size(p: float, alpha: float, rho: float = 0.05, power: float = POWER) -> int:
    """Mask length N so that serial_independence_test catches correlation rho between units L apart, for
    any one L in 1..8, with the given power: exact power of the two-sided equal-tailed disjoint-pair
    test at its share alpha/16, verified at the actual pair counts of every short lag."""
    _check(p, alpha, power)
    if p in (0.0, 1.0):
        return _DEGENERATE_N
    a = alpha / (2 * _SHORT_LAGS)
    s, s1 = _agree(p, rho)

    def pw(n):
        n = int(n)
        return _binom.cdf(_lower_crit(n, s, a / 2), n, s1) + _binom.sf(_upper_crit(n, s, a / 2) - 1, n, s1)

    n0 = ((_z(a / 2) * math.sqrt(s * (1 - s)) + _z(1 - power) * math.sqrt(s1 * (1 - s1))) / (s1 - s)) ** 2
    N = 2 * (_smallest_n(pw, n0, power) + _SHORT_LAGS)
    while not all(pw(m) >= power for m in _class_sizes(N, np.arange(1, _SHORT_LAGS + 1))[0]):
        N += 2 * _SHORT_LAGS
    return N


def serial_independence_test(dropped_flat: np.ndarray, p: float, alpha: float) -> StatVerdict:
    """1-D mask (C order).  H0: units independent.  For lag L, agreements of units L apart.  Two
    Bonferroni components, alpha/2 each:
      short lags 1..8 (alpha/16 per lag): exact two-sided equal-tailed binomial test on the DISJOINT pairs
        of class A (see _class_sizes); catches neighbour correlation rho with power per
        serial_sample_size, and deterministic short patterns (every k-th unit, period <= 8);
      long lags 9..N/2 (alpha/(2 K) per lag, K lags): all overlapping agreement counts A_L via one FFT
        autocorrelation.  A_L = A_A + A_B, each exactly binomial, so (union bound)
        P(A_L >= a) <= P(A_A >= ceil(a mA/m)) + P(A_B > floor(a mB/m)), likewise the lower tail: a
        rigorous exact-tail bound, no asymptotics.  Only the _SCREEN lags with largest |z| get the bound
        (skipping lags only lowers the false-alarm rate).  A generator repeating with period P makes
        A_P = N - P (all agree); class A then holds >= ~N/3 pairs, so it is caught with certainty once
        (p^2+q^2)^(N/3) <= alpha / N, e.g. any period 9 <= P <= N/2 at N = 20000, p in [0.01, 0.99].
    Conservative (Bonferroni + union bound).  statistic: max |z| of agreement counts over tested lags."""
    _check(p, alpha)
    x = np.asarray(dropped_flat, dtype=bool).ravel()
    N = x.size
    name = "serial independence (lag agreement)"
    if N < 4:
        raise ValueError("serial independence needs at least 4 units")
    if p in (0.0, 1.0):
        return _degenerate(name, p, [x], N, "; independence vacuous")
    s = _agree(p)[0]
    sd = math.sqrt(s * (1 - s))
    best = (math.inf, 0, "", 0.0)        # (adjusted p, lag, text, |z|)
    passed, zmax = True, 0.0
    short = range(1, min(_SHORT_LAGS, N // 2) + 1)
    a_short = alpha / (2 * _SHORT_LAGS)
    for L in short:
        sel = (np.arange(N - L) // L) % 2 == 0
        n = int(np.count_nonzero(sel))
        k = int(np.count_nonzero(x[:N - L][sel] == x[L:][sel]))
        pv = min(1.0, 2 * min(_binom.cdf(k, n, s), _binom.sf(k - 1, n, s)))  # equal-tailed
        z = abs(k - n * s) / (sd * math.sqrt(n))
        zmax, passed = max(zmax, z), passed and pv > a_short
        if pv * 2 * _SHORT_LAGS < best[0]:
            best = (pv * 2 * _SHORT_LAGS, L, f"{k}/{n} disjoint pairs agree", z)
    lags = np.arange(_SHORT_LAGS + 1, N // 2 + 1)
    if lags.size:
        zc = 2.0 * x - 1.0       # z_i z_{i+L} = +1 on agreement, -1 otherwise
        nfft = sfft.next_fast_len(2 * N, real=True)
        f = sfft.rfft(zc, nfft)
        corr = sfft.irfft(f * np.conj(f), nfft)[lags]
        m = N - lags
        A = np.rint((m + corr) / 2).astype(np.int64)
        zs = (A - m * s) / (sd * np.sqrt(m))
        top = np.argpartition(-np.abs(zs), _SCREEN)[:_SCREEN] if lags.size > _SCREEN else np.arange(lags.size)
        Lt, At, mt = lags[top], A[top], m[top]
        mA, mB = _class_sizes(N, Lt)
        hasB = mB > 0
        up = _binom.sf(-((-At * mA) // mt) - 1, mA, s) + np.where(
            hasB, _binom.sf((At * mB) // mt, np.maximum(mB, 1), s), 0.0)
        low = _binom.cdf((At * mA) // mt, mA, s) + np.where(
            hasB, _binom.cdf(-((-At * mB) // mt) - 1, np.maximum(mB, 1), s), 0.0)
        pl = np.minimum(1.0, 2.0 * np.minimum(up, low))
        a_long = alpha / (2 * lags.size)
        zmax, passed = max(zmax, float(np.max(np.abs(zs)))), passed and bool(np.all(pl > a_long))
        i = int(np.argmin(pl))
        if pl[i] * 2 * lags.size < best[0]:
            best = (pl[i] * 2 * lags.size, int(Lt[i]), f"{At[i]}/{mt[i]} overlapping pairs agree",
                    abs(float(zs[top][i])))
    pv_adj, L, txt, z = best
    return StatVerdict(name, passed, alpha, N, zmax, float(min(1.0, pv_adj)),
                       f"agreement rate p^2+q^2 = {s:.6g} at every lag 1..{N // 2}",
                       f"most significant lag {L}: {txt} (|z| {z:.3g})", None)


@lru_cache(maxsize=16)
def _dispersion_support(m: int, p: float):
    """Per-row terms Y = (c - m p)^2 / (m p q) on c = 0..m and their exact log-probabilities."""
    c = np.arange(m + 1)
    return (c - m * p) ** 2 / (m * p * (1 - p)), _binom.logpmf(c, m, p)


def _tilt(lam: float, y, lw):
    """log E[e^{lam Y}] and the tilted mean E[Y e^{lam Y}] / E[e^{lam Y}] (increasing in lam)."""
    t = lw + lam * y
    lm = special.logsumexp(t)
    return lm, float(np.exp(t - lm) @ y)


def _root_t(f) -> float:
    """t > 0 with f(t) ~ 0 for f increasing with f(0) < 0, else the largest t tried (2^100)."""
    lo, hi = 0.0, 1.0
    while f(hi) < 0:
        lo, hi = hi, hi * 2
        if hi > 2.0 ** 100:
            return lo
    return optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-12)


def _chernoff_logp(counts: np.ndarray, m: int, p: float, sign: float) -> float:
    """log of a rigorous bound on P(D/R <= x) (sign -1) or P(D/R >= x) (sign +1), x = observed mean of
    Y over R rows.  For every lam of that sign, P(.) <= exp(R (log E e^{lam Y} - lam x)) (Markov on
    e^{lam D}, rows iid), so an inexact root only loosens the bound.  If every row sits at the extreme
    value of Y, the bound is the exact probability P(Y = extreme)^R."""
    y, lw = _dispersion_support(m, p)
    R = counts.size
    yc = y[counts]
    x = float(yc.mean())
    ext = y.max() if sign > 0 else y.min()
    at = np.abs(y - ext) <= 1e-12 * max(1.0, ext)
    if np.all(np.abs(yc - ext) <= 1e-12 * max(1.0, ext)):
        return R * float(special.logsumexp(lw[at]))
    if sign * (x - _tilt(0.0, y, lw)[1]) <= 0:
        return 0.0
    t = _root_t(lambda t: sign * (_tilt(sign * t, y, lw)[1] - x))
    return min(0.0, R * (_tilt(sign * t, y, lw)[0] - sign * t * x))


@lru_cache(maxsize=1024)
def _dispersion_interval(R: int, m: int, p: float, alpha: float) -> tuple[float, float]:
    """Index-of-dispersion values where the Chernoff bound equals alpha/2 on each side (display)."""
    y, lw = _dispersion_support(m, p)
    out = []
    for sign, ext in ((-1.0, y.min()), (1.0, y.max())):
        at = np.abs(y - ext) <= 1e-12 * max(1.0, ext)
        if R * special.logsumexp(lw[at]) > math.log(alpha / 2):
            out.append(float(ext))            # bound never reaches alpha/2: this side cannot reject
            continue

        def f(t):
            lm, xt = _tilt(sign * t, y, lw)
            return sign * t * xt - lm + math.log(alpha / 2) / R
        out.append(_tilt(sign * _root_t(f), y, lw)[1])
    return out[0], out[1]


def dispersion_sample_size(p: float, row_len: int, alpha: float, power: float = POWER) -> int:
    """Rows needed so that exactly round(p*row_len) drops in every row is rejected.  That fault puts
    every row at the minimum of Y, where the lower bound is the exact P(Y = min)^R, so it is caught with
    probability 1 once P(Y = min)^R <= alpha/2 (`power` is accepted for API uniformity; this fault is
    deterministic, so any power target is met).  Over-dispersion has no stated size here."""
    _check(p, alpha, power)
    if p in (0.0, 1.0):
        return _DEGENERATE_N
    y, lw = _dispersion_support(int(row_len), p)
    lp_min = float(special.logsumexp(lw[np.abs(y - y.min()) <= 1e-12 * max(1.0, y.min())]))
    if lp_min >= -1e-12:
        raise ValueError(f"row_len {row_len} too short: a fixed count is the only likely outcome")
    return max(2, math.ceil(math.log(alpha / 2) / lp_min))


def dispersion_test(dropped: np.ndarray, p: float, alpha: float) -> StatVerdict:
    """dropped: (rows, row_len).  H0: per-row counts c ~ iid Binomial(m, p).  Statistic: index of
    dispersion x = mean over rows of (c - m p)^2 / (m p q) (1 under H0).  Two one-sided Chernoff bounds
    with the EXACT moment generating function of the binomial term, alpha/2 each (Bonferroni): rigorous
    and conservative, no chi-square approximation.  Catches under-dispersion (counts too regular; the
    fixed-count fault with power 1 at dispersion_sample_size) and over-dispersion (row-wise rate jitter)."""
    _check(p, alpha)
    d = np.asarray(dropped, dtype=bool)
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"expected a non-empty (rows, row_len) mask, got shape {d.shape}")
    R, m = d.shape
    name = "per-row count dispersion (exact-MGF Chernoff)"
    if p in (0.0, 1.0):
        return _degenerate(name, p, [d], R)
    counts = d.sum(axis=1)
    y = _dispersion_support(m, p)[0]
    x = float(y[counts].mean())
    lo_b, hi_b = (_chernoff_logp(counts, m, p, sgn) for sgn in (-1.0, 1.0))
    lb = min(lo_b, hi_b)
    pv = min(1.0, 2.0 * math.exp(lb))
    return StatVerdict(name, lb > math.log(alpha / 2), alpha, R, x, pv,
                       f"index of dispersion 1 (counts ~ Binomial({m}, {p:g}), variance {m * p * (1 - p):.6g})",
                       f"index of dispersion {x:.6g} (count variance {np.var(counts):.6g}, rows {R})",
                       _dispersion_interval(R, m, p, alpha), expected_value=1.0)


def _mean_interval(n: int, q: float, alpha: float) -> tuple[int, int]:
    return _lower_crit(n, q, alpha / 2) + 1, _upper_crit(n, q, alpha / 2) - 1


@lru_cache(maxsize=1024)
def mean_preservation_sample_size(p: float, alpha: float, rel_delta: float = 0.01, power: float = POWER) -> int:
    """Units needed so mean_preservation_test rejects outputs scaled by (1 +- rel_delta)/(1-p) with the
    given power; exact (K ~ Binomial(n, 1-p) under the fault too)."""
    _check(p, alpha, power)
    if p in (0.0, 1.0):
        return _DEGENERATE_N
    q = 1 - p

    def pw(n):
        lo, hi = _mean_interval(n, q, alpha)
        return min(_binom.cdf(math.ceil(lo / f) - 1, n, q) + _binom.sf(math.floor(hi / f), n, q)
                   for f in (1 + rel_delta, 1 - rel_delta))

    n0 = (_z(alpha / 2) + _z(1 - power)) ** 2 * p / (q * rel_delta ** 2)
    return _smallest_n(pw, n0, power)


def mean_preservation_test(ratio: np.ndarray, p: float, alpha: float, rel_delta: float = 0.01) -> StatVerdict:
    """ratio = output/input per unit (train mode, nonzero inputs).  H0: ratio is 0 w.p. p, else 1/(1-p),
    so mean(ratio) = K/(n q) with K ~ Binomial(n, q) exactly.  Exact equal-tailed two-sided test of
    E[ratio] == 1 (false alarm <= alpha); the tolerance is the exact acceptance interval for the mean
    (reported).  Power >= POWER against scale (1 +- rel_delta) at mean_preservation_sample_size.  Observed
    K-equivalents within 1e-6 relative of an integer are snapped to it (float32 scaling rounding).
    p = 0: every ratio must be 1 within rel_delta/10; p = 1: every ratio must be 0 (deterministic)."""
    _check(p, alpha)
    r = np.asarray(ratio, dtype=np.float64).ravel()
    n, name = r.size, "mean preservation E[output/input] == 1"
    if n == 0:
        raise ValueError("empty ratio array")
    mean = float(r.mean())
    if not np.all(np.isfinite(r)) or p in (0.0, 1.0):
        target, tol = (0.0, 0.0) if p == 1.0 else (1.0, rel_delta / 10)
        ok = bool(np.all(np.isfinite(r))) and p in (0.0, 1.0) and float(np.max(np.abs(r - target))) <= tol
        return StatVerdict(name, ok, 0.0, n, mean, float(ok),
                           f"every ratio {target:g} within {tol:g} (deterministic)" if p in (0.0, 1.0)
                           else "finite ratios", f"mean ratio {mean:.6g}", None)
    q = 1 - p
    x = mean * n * q
    if abs(x - round(x)) <= 1e-6 * max(1.0, abs(x)):
        x = float(round(x))
    pv = float(min(1.0, 2 * min(_binom.cdf(math.floor(x), n, q), _binom.sf(math.ceil(x) - 1, n, q))))
    lo, hi = _mean_interval(n, q, alpha)
    return StatVerdict(name, pv > alpha, alpha, n, mean, pv, f"mean ratio 1 (designed to catch +-{rel_delta:g})",
                       f"mean ratio {mean:.6g} (kept-unit equivalent {x:.6g} of {n})", (lo / (n * q), hi / (n * q)),
                       expected_value=1.0)
