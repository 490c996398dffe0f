"""Checks against the float64 reference, within the clause's per-dtype tolerance.

The reference always starts from exactly what the backend had: the input rounded
to its dtype, and the backend's own state before each call. So each call is judged
on its own, and rounding in the input or in stored state is never blamed on the
call under test.
"""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, check_finite, describe_positions
from nnconform.dtypes import accumulation_eps, dtype_eps, dtype_max
from nnconform.reference import STEPS, batch_statistics
from nnconform.reference.batchnorm import per_channel


def survivor_scale(ctx: CheckContext) -> None:
    scale = ctx.clause.options["expected"](ctx.case.names())
    tol = ctx.clause.tolerances[ctx.case.dtype]
    _, inputs, outputs = ctx.run()
    for x, out in zip(inputs, outputs):
        check_finite(ctx, "output", out)
        x64, out64 = x.astype(np.float64), out.astype(np.float64)
        kept = (out64 != 0) & (x64 != 0)
        want = x64 * scale
        wrong = kept & (np.abs(out64 - want) > tol.atol + tol.rtol * np.abs(want))
        if wrong.any():
            observed = np.median(out64[kept] / x64[kept])
            first = tuple(np.argwhere(wrong)[0])
            ctx.fail(f"kept units are not x * {ctx.clause.options['expected'].text} = x * {scale:.9g} "
                     f"(p={ctx.case.params['p']!r}, {ctx.case.dtype}, rtol {tol.rtol:g}): observed scale "
                     f"{observed:.9g} (median out/x over kept units); {describe_positions(wrong)} are off, "
                     f"first got {float(out[first]):.9g} for x={float(x[first]):.9g}")


def mask_values(ctx: CheckContext) -> None:
    scale = ctx.clause.options["expected"](ctx.case.names())
    tol = ctx.clause.tolerances[ctx.case.dtype]
    _, inputs, outputs = ctx.run()
    for x, out in zip(inputs, outputs):
        check_finite(ctx, "output", out)
        x64, out64 = x.astype(np.float64), out.astype(np.float64)
        want = x64 * scale
        scaled = np.abs(out64 - want) <= tol.atol + tol.rtol * np.abs(want)
        neither = ~((out64 == 0) | scaled)
        if neither.any():
            first = tuple(np.argwhere(neither)[0])
            ctx.fail(f"units that are neither 0 nor x * {scale:.9g}: {describe_positions(neither)}; "
                     f"first got {float(out[first]):.9g} for x={float(x[first]):.9g} (p={ctx.case.params['p']!r}, {ctx.case.dtype})")


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
        want_out, want_state = STEPS[case.layer](x64, before, case.params, training)
    except Exception as error:
        ctx.fail(f"the reference could not run from the backend's state before {where}: "
                 f"{type(error).__name__}: {error}")
    conditioning = error_scales(x64, before, case.params, training, dtype_eps(case.dtype))
    for name in ctx.clause.options["observe"]:
        got, want = (out, want_out) if name == "output" else (after.get(name), want_state[name])
        compare_with_reference(ctx, f"{name} after {where}", got, want, conditioning.get(name, (0.0, 0.0)))


def state_as_float64(state: dict) -> dict:
    converted = {}
    for name, value in state.items():
        if value is None or name == "num_batches_tracked":
            converted[name] = None if value is None else int(np.asarray(value))
        else:
            converted[name] = np.asarray(value).astype(np.float64)
    return converted


def error_scales(x: np.ndarray, before: dict, params: dict, training: bool, eps_dtype: float) -> dict:
    """Per observable, the scales of the two errors a conforming layer may make.

    rounding: a layer may hold its statistics in the input dtype, so the mean (or the
    running statistic) it uses can be off by an ulp of its own magnitude; normalising
    divides that by the standard deviation. A variance taken around such a rounded
    mean grows by the square of its error: up to (eps_dtype * |mean|)^2, scaled by
    n/(n-1) for the unbiased variance.
    accumulation: summing in float32 leaves an error near eps32 * max|x| in the mean.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    largest = np.abs(x).max(axis=axes)
    batch_mean, batch_var, count = batch_statistics(x)
    use_batch = training or before.get("running_var") is None
    mean, var = (batch_mean, batch_var) if use_batch else (before["running_mean"], before["running_var"])
    gain = 1.0 if before.get("weight") is None else np.maximum(1.0, np.abs(before["weight"]))
    spread = np.sqrt(np.maximum(var, 0) + params["eps"]) / gain
    unbiased = batch_var * count / max(count - 1, 1)
    previous_mean = 0.0 if before.get("running_mean") is None else np.abs(before["running_mean"])
    previous_var = 0.0 if before.get("running_var") is None else np.abs(before["running_var"])
    return {
        "output": (per_channel(np.abs(mean) / spread, x.ndim), per_channel(largest / spread, x.ndim)),
        "running_mean": (previous_mean + np.abs(batch_mean), largest),
        "running_var": (previous_var + unbiased + eps_dtype * batch_mean ** 2 * count / max(count - 1, 1),
                        largest * np.sqrt(batch_var)),
    }


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
    # A result beyond the dtype's largest finite value may round to infinity (a float16
    # output of 70835 is correctly inf): there only the sign and the overflow are judged.
    largest = dtype_max(ctx.case.dtype)
    overflow = np.abs(want) > largest
    check_finite(ctx, name, got64, np.where(overflow, np.inf, want))
    tol = ctx.clause.tolerances[ctx.case.dtype]
    rounding, accumulation = conditioning
    bound = (tol.atol + tol.rtol * np.abs(want)
             + ctx.clause.rounding * dtype_eps(ctx.case.dtype) * rounding
             + ctx.clause.accumulation * accumulation_eps(ctx.case.dtype) * accumulation)
    error = np.abs(got64 - want)
    wrong = ~(error <= bound) & ~(overflow & (np.sign(got64) == np.sign(want)) & (np.abs(got64) >= largest))
    if wrong.any():
        worst = np.unravel_index(np.argmax(np.where(wrong, error / np.maximum(bound, 1e-300), 0)), error.shape)
        ctx.fail(f"{name} differs from the float64 reference in {describe_positions(wrong)}; worst at {tuple(map(int, worst))}: "
                 f"got {got64[worst]:.9g}, expected {want[worst]:.9g}, |error| {error[worst]:.3g} > allowed "
                 f"{bound[worst]:.3g} ({ctx.case.layer}, {ctx.case.dtype}, {_params(ctx)})")


def _params(ctx: CheckContext) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in ctx.case.params.items())


CHECKS = {"survivor-scale": survivor_scale, "mask-values": mask_values, "close-to-reference": close_to_reference}
