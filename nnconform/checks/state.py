"""Checks on a layer's exposed state: initial values, absence, and staying frozen."""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, describe_positions


def state_equals(ctx: CheckContext) -> None:
    layer, _, _ = ctx.run()
    state = ctx.state(layer)
    names = ctx.case.names()
    for name, formula in ctx.clause.options["expected"].items():
        want = formula(names)
        got = state.get(name)
        if got is None:
            ctx.fail(f"expected {name} = {formula.text} = {want:g}, but the layer has no {name} ({_where(ctx)})")
        values = np.asarray(got).astype(np.float64)
        wrong = values != want
        if wrong.any():
            first = values.flat[int(np.flatnonzero(wrong)[0])]
            ctx.fail(f"expected every element of {name} to be {formula.text} = {want:g}; "
                     f"{describe_positions(wrong)} differ, first is {first!r} ({_where(ctx)})")
    trainable = ctx.clause.options.get("trainable", ())
    if trainable:
        declared = getattr(layer, "trainable", None)
        if declared is None:
            ctx.fail(f"the layer does not declare which state is trainable; expected {list(trainable)} to be")
        if not isinstance(declared, (set, frozenset, list, tuple)):
            ctx.fail(f"backend {ctx.backend_name!r}: the layer's trainable is {type(declared).__name__} "
                     f"{declared!r}, expected a set of state names such as {set(trainable)}")
        missing = [name for name in trainable if name not in declared]
        if missing:
            ctx.fail(f"expected {missing} to be trainable; the layer declares {sorted(declared)}")


def state_absent(ctx: CheckContext) -> None:
    layer, _, _ = ctx.run()
    state = ctx.state(layer)
    present = [name for name in ctx.clause.options["fields"] if state.get(name) is not None]
    if present:
        shapes = {name: np.shape(state[name]) for name in present}
        ctx.fail(f"expected no {present}, but the layer has them with shapes {shapes} ({_where(ctx)})")


def state_unchanged(ctx: CheckContext) -> None:
    layer = ctx.prepare()
    warmup = ctx.case.scenario["warmup"]
    before = _snapshot(ctx.state(layer), ctx.clause.options["fields"])
    expected = ctx.clause.model.initial_state(ctx.case.params, ctx.conventions)
    missing = [name for name, value in before.items() if value is None and expected.get(name) is not None]
    if missing:
        ctx.fail(f"the layer has no {missing} to watch, but with these parameters it should ({_where(ctx)})")
    if all(value is None for value in before.values()):
        ctx.not_exercised(f"none of {list(before)} exists with these parameters")
    for index in range(warmup, warmup + ctx.case.scenario["calls"]):
        ctx.forward(layer, ctx.case.batch(index))
        after = _snapshot(ctx.state(layer), ctx.clause.options["fields"])
        for name, old in before.items():
            new = after[name]
            if (old is None) != (new is None):
                ctx.fail(f"{name} changed from {old!r} to {new!r} in {ctx.case.mode} mode")
            if old is not None and (np.shape(old) != np.shape(new) or not np.array_equal(old, new, equal_nan=True)):
                ctx.fail(f"{name} changed in {ctx.case.mode} mode after call {index - warmup + 1}: "
                         f"before {_brief(old)}, after {_brief(new)} ({_where(ctx)})")


def _snapshot(state: dict, fields) -> dict:
    return {name: None if state.get(name) is None else np.array(state[name]).astype(np.float64) for name in fields}


def _brief(values) -> str:
    return np.array2string(np.asarray(values), precision=6, threshold=8)


def _where(ctx: CheckContext) -> str:
    params = ", ".join(f"{k}={v!r}" for k, v in ctx.case.params.items())
    return f"{ctx.case.layer}({params}), dtype {ctx.case.dtype}, after {ctx.case.scenario['calls']} {ctx.case.mode} call(s)"


CHECKS = {"state-equals": state_equals, "state-absent": state_absent, "state-unchanged": state_unchanged}
