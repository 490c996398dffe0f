"""Switching between train and eval back and forth: every call behaves as the mode
it was made in specifies, whatever came before.

Deterministic layers are judged call by call against their float64 reference step
from the layer's own state before the call, as close-to-reference does; dropout is
judged against the reference given the mask read off the call's output in train
mode, and must be the identity in eval mode.
"""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, check_finite, describe_positions
from nnconform.checks.reference_checks import judge_step
from nnconform.reference import STEPS, dropout_forward


def mode_sequence(ctx: CheckContext) -> list[str]:
    """`calls` calls alternating between the two modes, starting in the case's mode."""
    other = {"train": "eval", "eval": "train"}[ctx.case.mode]
    return [ctx.case.mode if call % 2 == 0 else other for call in range(ctx.case.scenario["calls"])]


def mode_switching(ctx: CheckContext) -> None:
    case = ctx.case
    modes = mode_sequence(ctx)
    ctx.seed()
    layer = ctx.build()
    for call, mode in enumerate(modes, start=1):
        ctx.set_mode(layer, mode)
        where = f"call {call} of {' -> '.join(modes)}"
        if case.layer in STEPS:
            judge_step(ctx, layer, call, mode, f"{mode}-mode {where}")
        else:
            _judge_masked(ctx, layer, call, mode, where)


def _judge_masked(ctx: CheckContext, layer, call: int, mode: str, where: str) -> None:
    case = ctx.case
    x = case.batch(call)
    x = np.where(x.astype(np.float64) == 0, np.ones_like(x), x)
    out = ctx.forward(layer, x.copy())
    check_finite(ctx, "output", out)
    x64, out64 = x.astype(np.float64), out.astype(np.float64)
    if mode == "eval":
        want, tol_rtol, tol_atol = x64, 0.0, 0.0
    else:
        tol = ctx.clause.tolerances[case.dtype]
        want, tol_rtol, tol_atol = dropout_forward(x64, out64 != 0, case.params["p"]), tol.rtol, tol.atol
    wrong = ~(np.abs(out64 - want) <= tol_atol + tol_rtol * np.abs(want))
    if wrong.any():
        first = tuple(np.argwhere(wrong)[0])
        expected = "the input (eval mode)" if mode == "eval" else "0 or x/(1-p) (train mode)"
        ctx.fail(f"output of {mode}-mode {where} is not {expected} in {describe_positions(wrong)}; first got "
                 f"{out64[first]:.9g} for x={x64[first]:.9g} (p={case.params['p']!r}, {case.dtype})")


CHECKS = {"mode-switching": mode_switching}
