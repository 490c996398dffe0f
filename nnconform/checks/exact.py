"""Checks with exact answers: identity, constant output, shape and dtype, in-place
behaviour and expected errors."""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, check_finite, describe_positions, error_text
from nnconform.dtypes import dtype_name


def _bits_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise exact equality that treats -0.0 == 0.0 and NaN == NaN (an array holds
    what was written into it) and compares values, not objects."""
    a64, b64 = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
    return (a64 == b64) | (np.isnan(a64) & np.isnan(b64))


def equals_input(ctx: CheckContext) -> None:
    _, inputs, outputs = ctx.run()
    for x, out in zip(inputs, outputs):
        check_finite(ctx, "output", out)
        differs = ~_bits_equal(out, x)
        if differs.any():
            first = tuple(np.argwhere(differs)[0])
            ctx.fail(f"output differs from the input in {describe_positions(differs)}; "
                     f"first: got {float(out[first]):.9g}, expected {float(x[first]):.9g} ({ctx.case.mode} mode, {_params(ctx)})")


def equals_value(ctx: CheckContext) -> None:
    expected = ctx.clause.options["expected"](ctx.case.names())
    _, _, outputs = ctx.run()
    for out in outputs:
        check_finite(ctx, "output", out)
        differs = ~_bits_equal(out, np.full(out.shape, expected))
        if differs.any():
            first = tuple(np.argwhere(differs)[0])
            ctx.fail(f"expected every unit to be {ctx.clause.options['expected'].text} = {expected!r}; "
                     f"{describe_positions(differs)} differ, first got {float(out[first]):.9g} ({_params(ctx)})")


def shape_dtype(ctx: CheckContext) -> None:
    _, inputs, outputs = ctx.run()
    for x, out in zip(inputs, outputs):
        if out.dtype != x.dtype:
            ctx.fail(f"output dtype {dtype_name(out.dtype)}, expected the input's dtype {dtype_name(x.dtype)} "
                     f"({ctx.case.mode} mode)")


def inplace(ctx: CheckContext) -> None:
    layer = ctx.prepare()
    original = ctx.case.batch(0)
    given = original.copy()
    out = ctx.forward(layer, given)
    if ctx.case.params["inplace"]:
        differs = ~_bits_equal(given, out)
        if differs.any():
            ctx.fail(f"inplace=True but the input array does not hold the output afterwards: {describe_positions(differs)}")
    else:
        changed = ~_bits_equal(given, original)
        if changed.any():
            ctx.fail(f"inplace=False but the input was modified: {describe_positions(changed)}")


def raises(ctx: CheckContext) -> None:
    types = {"ValueError": ValueError, "TypeError": TypeError, "RuntimeError": RuntimeError}
    wanted = tuple(types[name] for name in ctx.clause.options["error"])
    when = ctx.clause.options["when"]
    # Under the `validation = "at-first-call"` convention, an error the spec expects
    # from build may come from the first forward call instead (the layer is built lazily).
    accepted = {when, "forward"} if when == "build" and ctx.conventions.get("validation") == "at-first-call" else {when}
    where = " or ".join(sorted(accepted, key=["build", "forward"].index))
    expected = (f"expected {' or '.join(ctx.clause.options['error'])} in {where} ({_params(ctx)}, "
                f"input shape {ctx.case.shape})")
    call = "build"
    try:
        layer = ctx.build_layer()
        if "forward" in accepted:
            call = ctx.case.mode
            getattr(layer, call)()
            call = "forward"
            layer.forward(ctx.case.batch(0))
    except (Exception, SystemExit) as error:
        if isinstance(error, wanted) and call in accepted:
            return
        ctx.fail(f"{expected}, but backend {ctx.backend_name!r} raised {type(error).__name__} in {call}: "
                 f"{error_text(error)}")
    ctx.fail(f"{expected}, but nothing was raised")


def _params(ctx: CheckContext) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in ctx.case.params.items())


CHECKS = {"equals-input": equals_input, "equals-value": equals_value, "shape-dtype": shape_dtype,
          "inplace": inplace, "raises": raises}
