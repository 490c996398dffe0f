"""Statistical checks of random layers. Each makes one decision at the alpha the
harness gives it (its share of the suite's false-alarm budget) and draws the
sample size that its power guarantee needs, whatever the size of the drawn input:
it tiles the input along axis 0 or calls the layer repeatedly, as the property's
own independence assumption allows."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nnconform import moments
from nnconform import statistics as stats
from nnconform.checks.context import CheckContext, check_finite
from nnconform.checks.masks import (_tolerance, count_units, distinct_input, dropped_units, magnitudes, rate,
                                   repeated_dropped_units, unit_values)
from nnconform.dtypes import numpy_dtype

SERIAL_MIN_UNITS = 20_000  # past the few-thousand-unit period of a weak generator


def _tiled(ctx: CheckContext, x: np.ndarray, units: int) -> np.ndarray:
    """x repeated along axis 0 until it holds at least ``units`` random units."""
    copies = max(1, math.ceil(units / max(1, count_units(ctx, x))))
    return np.tile(x, (copies,) + (1,) * (x.ndim - 1)) if copies > 1 else x.copy()


def _train_layer(ctx: CheckContext):
    ctx.seed()
    layer = ctx.build()
    ctx.set_mode(layer, "train")
    return layer


def _decide(ctx: CheckContext, verdict: stats.StatVerdict) -> None:
    __tracebackhide__ = True
    ctx.evidence.update(test=verdict.test, p=rate(ctx), alpha=verdict.alpha, n=verdict.n,
                        statistic=verdict.statistic, p_value=verdict.p_value, expected=verdict.expected,
                        observed=verdict.observed, passed=verdict.passed,
                        interval=list(verdict.interval) if verdict.interval is not None else None,
                        expected_value=verdict.expected_value)
    if not verdict.passed:
        ctx.fail(f"{verdict.describe()} ({ctx.case.layer}, p={rate(ctx)!r}, {ctx.case.dtype}, "
                 f"input shape {ctx.case.shape}, seed {ctx.case.seed})")


def _settings(ctx: CheckContext) -> tuple[float, float, float]:
    statistics = ctx.clause.statistics
    return rate(ctx), statistics["delta"], statistics["power"]


def drop_rate(ctx: CheckContext) -> None:
    p, delta, power = _settings(ctx)
    n = stats.drop_rate_sample_size(p, ctx.alpha, delta, power)
    dropped = dropped_units(ctx, _train_layer(ctx), _tiled(ctx, distinct_input(ctx), n))
    _decide(ctx, stats.drop_rate_test(dropped, p, ctx.alpha))


def mean_preservation(ctx: CheckContext) -> None:
    p, delta, power = _settings(ctx)
    if p >= 1.0:
        return  # an all-dropped output is judged by the family's p-one clause
    n = stats.mean_preservation_sample_size(p, ctx.alpha, delta, power)
    x = _tiled(ctx, distinct_input(ctx), n)
    out = ctx.forward(_train_layer(ctx), x.copy())
    check_finite(ctx, "output", out)
    ratio = ctx.case.as_batched(out.astype(np.float64) / x.astype(np.float64))
    axes = ctx.clause.model.random.unit_axes(ratio.ndim)
    per_unit = ratio.mean(axis=axes) if axes else ratio  # a channel's elements share one fate
    _decide(ctx, stats.mean_preservation_test(per_unit.ravel(), p, ctx.alpha, delta))


def position_uniformity(ctx: CheckContext) -> None:
    p, delta, power = _settings(ctx)
    x = distinct_input(ctx)
    calls = stats.position_uniformity_sample_size(p, count_units(ctx, x), ctx.alpha, delta, power)
    layer = _train_layer(ctx)
    masks = repeated_dropped_units(ctx, layer, x, calls)
    _decide(ctx, stats.position_uniformity_test(masks, p, ctx.alpha))


def batch_independence(ctx: CheckContext) -> None:
    p, delta, power = _settings(ctx)
    pairs = stats.agreement_sample_size(p, ctx.alpha, delta, power)
    x = distinct_input(ctx)
    row = max(1, count_units(ctx, x) // x.shape[0])
    big = _tiled(ctx, x, 2 * row * math.ceil(pairs / row))
    rows = big.shape[0] - big.shape[0] % 2
    dropped = dropped_units(ctx, _train_layer(ctx), big)[:rows].reshape(rows, -1)
    _decide(ctx, stats.agreement_test(dropped[0::2], dropped[1::2], p, ctx.alpha, "across the batch"))


def call_independence(ctx: CheckContext) -> None:
    p, delta, power = _settings(ctx)
    pairs = stats.agreement_sample_size(p, ctx.alpha, delta, power)
    x = _tiled(ctx, distinct_input(ctx), pairs)
    layer = _train_layer(ctx)
    first, second = dropped_units(ctx, layer, x), dropped_units(ctx, layer, x)
    _decide(ctx, stats.agreement_test(first, second, p, ctx.alpha, "across calls"))


def serial_independence(ctx: CheckContext) -> None:
    p, delta, power = _settings(ctx)
    units = max(SERIAL_MIN_UNITS, stats.serial_sample_size(p, ctx.alpha, delta, power))
    dropped = dropped_units(ctx, _train_layer(ctx), _tiled(ctx, distinct_input(ctx), units))
    _decide(ctx, stats.serial_independence_test(dropped.ravel(), p, ctx.alpha))


def dispersion(ctx: CheckContext) -> None:
    p, _, power = _settings(ctx)
    x = distinct_input(ctx)
    rows = stats.dispersion_sample_size(p, count_units(ctx, x), ctx.alpha, power)
    layer = _train_layer(ctx)
    masks = repeated_dropped_units(ctx, layer, x, rows)
    _decide(ctx, stats.dispersion_test(masks, p, ctx.alpha))


def moment_preservation(ctx: CheckContext) -> None:
    """Standard-normal input, tiled to the units the test needs; one output element per
    unit (a channel's elements share its fate), so the values are independent. The
    input is drawn in float64 and rounded to the dtype: the rounding, and each output's
    allowed error, bound how far the observed sums may lie from the model's (slack)."""
    p, delta, power = _settings(ctx)
    dropped, scale, shift = unit_values(ctx)
    n = moments.moment_sample_size(p, ctx.alpha, delta, power, dropped, scale, shift)
    case = ctx.case
    copies = math.ceil(n / max(1, count_units(ctx, case.batch(0))))
    shape = (copies * case.shape[0],) + tuple(case.shape[1:])
    exact = dataclasses.replace(case, values="standard", dtype="float64").batch(0, shape)
    x = exact.astype(numpy_dtype(case.dtype))
    out = ctx.forward(_train_layer(ctx), x.copy())
    check_finite(ctx, "output", out)
    y, x_used, x_exact = (_one_per_unit(ctx, a.astype(np.float64)) for a in (out, x, exact))
    dropped_magnitude, kept_magnitude = magnitudes(ctx, x_used)
    error = np.maximum(_tolerance(ctx, np.full_like(x_used, dropped_magnitude)), _tolerance(ctx, kept_magnitude))
    if np.isfinite(scale):
        error = error + abs(scale) * np.abs(x_used - x_exact)
        ideal = np.maximum(np.abs(scale * x_exact + shift), abs(dropped))
    else:
        ideal = np.full_like(x_exact, abs(dropped))
    slack = (float(error.sum()), float((error * (2 * ideal + error)).sum()))
    _decide(ctx, moments.moment_preservation_test(y, p, ctx.alpha, dropped, scale, shift, slack))


def _one_per_unit(ctx: CheckContext, values: np.ndarray) -> np.ndarray:
    """The first element of each unit, flattened: all of them for element units."""
    batched = ctx.case.as_batched(values)
    axes = ctx.clause.model.random.unit_axes(batched.ndim)
    return batched[(slice(None), slice(None)) + (0,) * len(axes)].ravel() if axes else values.ravel()


CHECKS = {"moment-preservation": moment_preservation, "drop-rate": drop_rate, "mean-preservation": mean_preservation,
          "position-uniformity": position_uniformity, "batch-independence": batch_independence,
          "call-independence": call_independence, "serial-independence": serial_independence,
          "dispersion": dispersion}
