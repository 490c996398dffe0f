"""Checks against the float64 reference, within the clause's per-dtype tolerance.

The reference always starts from exactly what the backend had: the input rounded
to its dtype, and the backend's own state before each call. So each call is judged
on its own, and rounding in the input or in stored state is never blamed on the
call under test.
"""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, check_finite, describe_positions
from nnconform.checks.masks import (classify, distinct_input, judge_masked, magnitudes, matches, rate, unit_values,
                                    with_survivors)
from nnconform.formula import FormulaError
from nnconform.dtypes import accumulation_eps, dtype_eps, dtype_max


def survivor_scale(ctx: CheckContext) -> None:
    """Kept units equal x times the clause's expected scale (plus the family's shift).
    The input is tiled so that about 8 units are expected to survive even at p near 1,
    where a 16-bit scale overflows: the verdict there must not depend on luck."""
    try:
        scale = ctx.clause.options["expected"](ctx.case.names())
    except FormulaError:  # 1/(1-p) at p = 1: no unit is kept
        ctx.not_exercised(f"the scale {ctx.clause.options['expected'].text} is undefined at p={rate(ctx)!r}")
    _, _, shift = unit_values(ctx)
    tol = ctx.clause.tolerances[ctx.case.dtype]
    layer = ctx.prepare()
    judged = 0
    for index in range(ctx.case.scenario["calls"]):
        x = with_survivors(ctx, distinct_input(ctx, index))
        out = ctx.forward(layer, x.copy())
        x64, out64 = x.astype(np.float64), out.astype(np.float64)
        if np.isnan(out64).any():
            ctx.fail(f"output has non-finite values (NaN or inf) where finite ones are expected: "
                     f"{describe_positions(np.isnan(out64))} are NaN")
        dropped, _ = classify(ctx, x, out)
        kept = ~dropped
        judged += int(kept.sum())
        want = x64 * scale + shift
        wrong = kept & ~matches(ctx, out64, want, np.abs(x64 * scale) + abs(shift))
        if wrong.any():
            finite = kept & np.isfinite(out64)
            observed = np.median((out64[finite] - shift) / x64[finite]) if finite.any() else float("nan")
            first = tuple(np.argwhere(wrong)[0])
            ctx.fail(f"kept units are not x * {ctx.clause.options['expected'].text} = x * {scale:.9g} "
                     f"(p={rate(ctx)!r}, {ctx.case.dtype}, rtol {tol.rtol:g}): observed scale "
                     f"{observed:.9g} (median over finite kept units); {describe_positions(wrong)} are off, "
                     f"first got {float(out[first]):.9g} for x={float(x[first]):.9g}")
    if not judged:
        ctx.not_exercised(f"no unit was kept (p={rate(ctx)!r})")


def mask_values(ctx: CheckContext) -> None:
    """Every unit is either the dropped value or the kept value, never anything else."""
    layer = ctx.prepare()
    judged = 0
    for index in range(ctx.case.scenario["calls"]):
        x = with_survivors(ctx, distinct_input(ctx, index))
        out = ctx.forward(layer, x.copy())
        judged += judge_masked(ctx, x, out, f"train call {index + 1}")
    if not judged:
        ctx.not_exercised(f"no unit was kept (p={rate(ctx)!r})")


def close_to_reference(ctx: CheckContext) -> None:
    layer = ctx.prepare()
    warmup = ctx.case.scenario["warmup"]
    for call, index in enumerate(range(warmup, warmup + ctx.case.scenario["calls"]), start=1):
        judge_step(ctx, layer, index, ctx.case.mode, f"{ctx.case.mode} call {call}")


def judge_step(ctx: CheckContext, layer, index: int, mode: str, where: str) -> None:
    """One forward call on batch `index` in `mode`, judged on the clause's `observe`
    fields against the reference step run from the backend's own state before it."""
    case = ctx.case
    training = mode == "train"
    before = state_as_float64(ctx.state(layer))
    x = case.batch(index)
    out = ctx.forward(layer, x.copy())
    after = ctx.state(layer)
    x64 = x.astype(np.float64)
    try:
        want_out, want_state = ctx.reference_step(x64, before, training)
    except Exception as error:
        ctx.fail(f"the reference could not run from the backend's state before {where}: "
                 f"{type(error).__name__}: {error}")
    conditioning = error_scales(ctx, x64, before, training)
    for name in ctx.clause.options["observe"]:
        got, want = (out, want_out) if name == "output" else (after.get(name), want_state.get(name))
        compare_with_reference(ctx, f"{name} after {where}", got, want, conditioning.get(name, (0.0, 0.0)))


def state_as_float64(state: dict) -> dict:
    converted = {}
    for name, value in state.items():
        if value is None or (np.ndim(value) == 0 and np.asarray(value).dtype.kind in "iu"):
            converted[name] = None if value is None else int(np.asarray(value))
        else:
            converted[name] = np.asarray(value).astype(np.float64)
    return converted


def statistics_used(ctx: CheckContext, xb: np.ndarray, before: dict, training: bool) -> dict:
    """The family's statistics of a batched input, broadcast to its shape: the batch's,
    or the running statistics where the layer uses them (eval mode, tracked)."""
    family, params = ctx.clause.model, ctx.case.params
    norm = family.normalization
    stats = norm.statistics(xb, params)
    stats["eps"] = norm.eps_value(params, ctx.case.dtype)
    running = norm.running_var and before.get(norm.running_var) is not None
    stats["batch_mean"], stats["batch_var"] = stats["mean"], stats["var"]
    if running and not training:
        stats["mean"] = np.broadcast_to(family.broadcast(norm.running_mean, before[norm.running_mean], xb.ndim), xb.shape)
        stats["var"] = np.broadcast_to(family.broadcast(norm.running_var, before[norm.running_var], xb.ndim), xb.shape)
    gain, shift = np.ones(xb.shape), np.zeros(xb.shape)
    for name, spec in family.state.items():
        if spec.trainable and before.get(name) is not None:
            values = np.abs(family.broadcast(name, before[name], xb.ndim))
            if spec.init == 1:
                gain = gain * values
            else:
                shift = shift + values
    stats["gain"], stats["shift"] = gain, shift
    return stats


def error_scales(ctx: CheckContext, x: np.ndarray, before: dict, training: bool) -> dict:
    """Per observable, the scales of the two errors a conforming layer may make.

    rounding: a layer may hold its statistics in the input dtype, so the mean (or the
    running statistic) it uses can be off by an ulp of its own magnitude; normalising
    divides that by the standard deviation. A layer may also fold the statistics and
    the affine parameters into one scale and shift in the input dtype (y = x * a + b),
    so the output may be off by an ulp of |x * a| and of |b|. A variance taken around such a rounded
    mean grows by the square of its error: up to (eps_dtype * |mean|)^2, scaled by
    n/(n-1) for the unbiased variance.
    accumulation: each of the M members summed into a statistic in float32 may add a
    rounding error of up to an ulp of the running sum; as independent errors they grow
    as sqrt(M), so the mean is off by about sqrt(M) * eps32 * max|x|.
    """
    xb = ctx.case.as_batched(x)
    stats = statistics_used(ctx, xb, before, training)
    eps_dtype = dtype_eps(ctx.case.dtype)
    growth = np.sqrt(stats["count"])
    spread = np.sqrt(np.maximum(stats["var"], 0) + stats["eps"]) / np.maximum(1.0, stats["gain"])
    folded = (np.abs(stats["mean"]) + np.abs(xb - stats["mean"])) / spread + stats["shift"]
    scales = {"output": _unbatch(ctx, (folded, growth * stats["largest"] / spread))}
    norm = ctx.clause.model.normalization
    if norm.running_mean and before.get(norm.running_mean) is not None:
        count = stats["count"]
        per_channel = lambda a: np.asarray(a).max(axis=tuple(i for i in range(xb.ndim) if i != 1))
        unbiased = stats["batch_var"] * count / max(count - 1, 1)
        scales[norm.running_mean] = (np.abs(before[norm.running_mean]) + per_channel(np.abs(stats["batch_mean"])),
                                     growth * per_channel(stats["largest"]))
        scales[norm.running_var] = (np.abs(before[norm.running_var]) + per_channel(unbiased)
                                    + eps_dtype * per_channel(stats["batch_mean"] ** 2) * count / max(count - 1, 1),
                                    growth * per_channel(stats["largest"] * np.sqrt(stats["batch_var"])))
    return scales


def _unbatch(ctx: CheckContext, pair):
    return pair if ctx.case.batched else tuple(a[0] for a in pair)


def compare_with_reference(ctx: CheckContext, name: str, got, want, conditioning) -> None:
    __tracebackhide__ = True
    if want is None:
        if got is not None:
            ctx.fail(f"{name}: expected none (the reference has no {name.split()[0]}), got {type(got).__name__} "
                     f"of shape {np.shape(got)}")
        return
    if got is None:
        ctx.fail(f"{name}: expected values of shape {np.shape(want)}, got None")
    if isinstance(want, int):
        if int(np.asarray(got)) != want:
            ctx.fail(f"{name}: got {got!r}, expected {want}")
        return
    got64 = np.asarray(got).astype(np.float64)
    if got64.shape != np.shape(want):
        ctx.fail(f"{name}: shape {got64.shape}, expected {np.shape(want)}")
    tol = ctx.clause.tolerances[ctx.case.dtype]
    rounding, accumulation = conditioning
    bound = (tol.atol + tol.rtol * np.abs(want)
             + ctx.clause.rounding * dtype_eps(ctx.case.dtype) * rounding
             + ctx.clause.accumulation * accumulation_eps(ctx.case.dtype) * accumulation)
    # A result that may lie beyond the dtype's largest finite value may round to
    # infinity (a float16 output of 70835 is correctly inf, and so is one of 65400 that
    # a conforming layer may compute as 65600): where [want - bound, want + bound]
    # reaches past the range on one side, the largest value or the infinity of that side
    # is within the bound. That side is want's own unless the bound exceeds the range
    # itself (an ill-conditioned gradient: a float16 input gradient of -33701 allowed an
    # error of 2e6 may come out as +inf, as the bound admits +2e6).
    largest = dtype_max(ctx.case.dtype)
    above, below = want + bound > largest, want - bound < -largest
    overflow = above | below
    check_finite(ctx, name, got64, np.where(overflow, np.inf, want))
    error = np.abs(got64 - want)
    wrong = ~(error <= bound) & ~((above & (got64 >= largest)) | (below & (got64 <= -largest)))
    finite = ~overflow & np.isfinite(error)
    if finite.any():  # how much of the allowed error the layer used: the bound's looseness
        used = float(np.max(error[finite] / np.maximum(bound[finite], 1e-300)))
        ctx.notes["looseness"] = max(ctx.notes.get("looseness", 0.0), used)
    if wrong.any():
        worst = np.unravel_index(np.argmax(np.where(wrong, error / np.maximum(bound, 1e-300), 0)), error.shape)
        ctx.fail(f"{name} differs from the float64 reference in {describe_positions(wrong)}; worst at {tuple(map(int, worst))}: "
                 f"got {got64[worst]:.9g}, expected {want[worst]:.9g}, |error| {error[worst]:.3g} > allowed "
                 f"{bound[worst]:.3g} ({ctx.case.layer}, {ctx.case.dtype}, {_params(ctx)}; values {ctx.case.values}, "
                 f"layout {ctx.case.layout})")


def _params(ctx: CheckContext) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in ctx.case.params.items())


CHECKS = {"survivor-scale": survivor_scale, "mask-values": mask_values, "close-to-reference": close_to_reference}
