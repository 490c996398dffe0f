"""Reading a random layer's decisions off its output, from the family's [random] table:
which units were dropped (the output is the `dropped` value) and which were kept (the
output is `scale * x + shift`), where a unit is an element or a whole channel.

Units are laid out as the input's leading axes: the input's own shape for element
units; (N, C) for channel units of a batched input and (C,) of an unbatched one.
"""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, check_finite, describe_positions
from nnconform.dtypes import dtype_max


def unit_values(ctx: CheckContext) -> tuple[float, float, float]:
    """(dropped, scale, shift) at the case's parameters."""
    return ctx.clause.model.random.values(ctx.case.names())


def rate(ctx: CheckContext) -> float:
    return float(ctx.case.params[ctx.clause.model.random.rate])


def _tolerance(ctx: CheckContext, magnitude):
    tol = ctx.clause.tolerances.get(ctx.case.dtype)
    if tol is None:
        return np.zeros_like(magnitude)
    return tol.atol + tol.rtol * magnitude


def magnitudes(ctx: CheckContext, x64: np.ndarray) -> tuple[float, np.ndarray]:
    """The magnitudes a unit's rounding error scales with: a layer may compute an output
    as a product plus the shift in its own dtype, each rounded, so a kept unit may be off
    by rtol * (|scale * x| + |shift|) and a dropped one by rtol * (|dropped - shift| +
    |shift|) (a dropped value that is itself a*alpha' + b is such a sum, and cancels as p
    nears 1). Without a shift these are |kept value| and |dropped value|."""
    dropped, scale, shift = unit_values(ctx)
    shift = shift if np.isfinite(shift) else 0.0
    kept = np.abs(scale * x64) + abs(shift) if np.isfinite(scale) else np.zeros_like(x64)
    return abs(dropped - shift) + abs(shift), kept


def matches(ctx: CheckContext, out64: np.ndarray, want, magnitude=None) -> np.ndarray:
    """out equals want within the clause's tolerance (scaled by `magnitude`, |want| by
    default); where want lies beyond the dtype's largest finite value, the correctly
    rounded result is an infinity of its sign. want and magnitude may be scalars."""
    close = np.abs(out64 - want) <= _tolerance(ctx, np.abs(want) if magnitude is None else magnitude)
    beyond = np.abs(want) > dtype_max(ctx.case.dtype)
    if np.any(beyond):
        close |= beyond & np.isinf(out64) & (np.sign(out64) == np.sign(want))
    return close


def distinct_input(ctx: CheckContext, index: int = 0, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A drawn input in which no unit's kept value equals the dropped value (an exact
    zero where dropped units are zeroed), so that every unit's fate can be read off the output."""
    x = ctx.case.batch(index, shape)
    dropped, scale, shift = unit_values(ctx)
    if not np.isfinite(scale):
        return x
    x64 = x.astype(np.float64)
    kept = scale * x64 + shift
    dropped_magnitude, kept_magnitude = magnitudes(ctx, x64)
    room = _tolerance(ctx, dropped_magnitude) + _tolerance(ctx, kept_magnitude)
    ambiguous = np.abs(kept - dropped) <= 2 * room + 1e-300
    if ambiguous.any():
        substitute = 1.0 if abs(scale + shift - dropped) > abs(scale) * 1e-3 else -1.0
        x = np.where(ambiguous, np.asarray(substitute, dtype=x.dtype), x)
    return x


def classify(ctx: CheckContext, x: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element masks (dropped, kept): the output equals the dropped value, or the kept
    value ``scale * x + shift``, each within the clause's tolerance. An element can be
    neither (a wrong value); NaN is never either."""
    dropped_value, scale, shift = unit_values(ctx)
    out64, x64 = out.astype(np.float64), x.astype(np.float64)
    dropped_magnitude, kept_magnitude = magnitudes(ctx, x64)
    dropped = matches(ctx, out64, dropped_value, dropped_magnitude)
    if not np.isfinite(scale):
        return dropped, np.zeros_like(dropped)
    kept = matches(ctx, out64, scale * x64 + shift, kept_magnitude)
    return dropped, kept & ~dropped


def unit_mask(ctx: CheckContext, elements: np.ndarray) -> np.ndarray:
    """Per-unit values of an element mask; fails when a channel unit is partly set."""
    random = ctx.clause.model.random
    batched = ctx.case.as_batched(elements)
    axes = random.unit_axes(batched.ndim)
    if not axes:
        return elements
    every, some = batched.all(axis=axes), batched.any(axis=axes)
    mixed = some & ~every
    if mixed.any():
        ctx.fail(f"a unit is a whole channel, but {describe_positions(mixed)} channels (sample, channel) are "
                 f"partly dropped ({ctx.case.layer}, input shape {ctx.case.shape}, {ctx.case.dtype})")
    return every if ctx.case.batched else every[0]


def dropped_units(ctx: CheckContext, layer, x: np.ndarray) -> np.ndarray:
    """One train-mode call; the mask of dropped units. A NaN output is neither dropped
    nor kept, so it fails here, by position; any other value counts as kept."""
    return _dropped_of(ctx, x, ctx.forward(layer, x.copy()))


def repeated_dropped_units(ctx: CheckContext, layer, x: np.ndarray, calls: int) -> np.ndarray:
    """(calls, units): the dropped-unit masks of ``calls`` train-mode calls on the same x,
    each row raveled as dropped_units(...).ravel() is. The outputs are judged together, as
    one batch along the sample axis (units are per sample, so this reads each call as
    its own), which costs one numpy pass instead of one per call. If any output has a
    NaN or a partly dropped channel, the calls are judged one by one, so the failure
    names positions within the call, as dropped_units does."""
    outs = [ctx.forward(layer, x.copy()) for _ in range(calls)]
    stacked = np.concatenate([ctx.case.as_batched(out) for out in outs])
    dropped, _ = classify(ctx, np.concatenate([ctx.case.as_batched(x)] * calls), stacked)
    axes = ctx.clause.model.random.unit_axes(stacked.ndim)
    every = dropped.all(axis=axes) if axes else dropped
    partial = (dropped.any(axis=axes) & ~every).any() if axes else False
    if partial or np.isnan(stacked.astype(np.float64)).any():
        for out in outs:
            _dropped_of(ctx, x, out)
    return every.reshape(calls, -1)


def _dropped_of(ctx: CheckContext, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    out64 = out.astype(np.float64)
    nan = np.isnan(out64)
    if nan.any():
        ctx.fail(f"output has non-finite values (NaN or inf) where finite ones are expected: "
                 f"{describe_positions(nan)} are NaN, which is neither dropped nor kept")
    dropped, _ = classify(ctx, x, out)
    return unit_mask(ctx, dropped)


def count_units(ctx: CheckContext, x: np.ndarray) -> int:
    """How many random units an input holds."""
    batched = ctx.case.as_batched(x)
    axes = ctx.clause.model.random.unit_axes(batched.ndim)
    return int(batched.size // int(np.prod([batched.shape[a] for a in axes], dtype=np.int64)))


def judge_masked(ctx: CheckContext, x: np.ndarray, out: np.ndarray, where: str) -> int:
    """Every unit is exactly one of dropped or kept (whole channels for channel units).
    Returns the number of kept units that were judged (0: nothing was exercised)."""
    dropped_value, scale, shift = unit_values(ctx)
    want = scale * x.astype(np.float64) + shift if np.isfinite(scale) else np.zeros(x.shape)
    check_finite(ctx, "output", out, np.where(np.abs(want) > dtype_max(ctx.case.dtype), np.inf, want))
    dropped, kept = classify(ctx, x, out)
    neither = ~(dropped | kept)
    if neither.any():
        first = tuple(np.argwhere(neither)[0])
        ctx.fail(f"{where}: units that are neither the dropped value {dropped_value:.9g} nor the kept value "
                 f"{scale:.9g} * x + {shift:.9g}: {describe_positions(neither)}; first got "
                 f"{float(out[first]):.9g} for x={float(x[first]):.9g} ({_params(ctx)}, {ctx.case.dtype})")
    unit_mask(ctx, dropped)
    return int(unit_mask(ctx, kept).sum())


def _params(ctx: CheckContext) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in ctx.case.params.items())


def with_survivors(ctx: CheckContext, x: np.ndarray, survivors: int = 8, cap: int = 1 << 21) -> np.ndarray:
    """x tiled along axis 0 until ``survivors`` kept units are expected (at most ``cap``
    elements), so that at p near 1, where a 16-bit scale overflows, the verdict does not
    depend on whether a unit happened to survive: with 8 expected, no unit survives with
    probability e^-8 = 3e-4. At p = 0.99999 that is 800,000 element units; the cap of 2M
    elements bounds what a channel unit of many elements costs (fewer survivors there)."""
    keep = 1.0 - rate(ctx)
    if keep <= 0 or x.ndim == 0:
        return x
    have = max(1, count_units(ctx, x))
    copies = min(int(np.ceil(survivors / keep / have)), max(1, cap // max(1, x.size)))
    if copies * have * keep < 1:  # even the cap leaves no survivor expected: tiling buys nothing
        return x
    return np.tile(x, (copies,) + (1,) * (x.ndim - 1)) if copies > 1 else x
