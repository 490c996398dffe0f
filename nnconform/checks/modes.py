"""Switching between train and eval back and forth: every call behaves as the mode
it was made in specifies, whatever came before.

Deterministic layers are judged call by call against their float64 reference step
from the layer's own state before the call, as close-to-reference does; a random
layer's train-mode call must give every unit its dropped or its kept value, and its
eval-mode call must be the identity.
"""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, check_finite, describe_positions
from nnconform.checks.masks import distinct_input, judge_masked, with_survivors
from nnconform.checks.reference_checks import judge_step


def mode_sequence(ctx: CheckContext) -> list[str]:
    """`calls` calls alternating between the two modes, starting in the case's mode."""
    other = {"train": "eval", "eval": "train"}[ctx.case.mode]
    return [ctx.case.mode if call % 2 == 0 else other for call in range(ctx.case.scenario["calls"])]


def mode_switching(ctx: CheckContext) -> None:
    modes = mode_sequence(ctx)
    layer = ctx.prepare(warmup=False)
    for call, mode in enumerate(modes, start=1):
        ctx.set_mode(layer, mode)
        where = f"call {call} of {' -> '.join(modes)}"
        if ctx.clause.model.random is None:
            judge_step(ctx, layer, call, mode, f"{mode}-mode {where}")
        else:
            _judge_masked(ctx, layer, call, mode, where)


def _judge_masked(ctx: CheckContext, layer, call: int, mode: str, where: str) -> None:
    x = with_survivors(ctx, distinct_input(ctx, call)) if mode == "train" else distinct_input(ctx, call)
    out = ctx.forward(layer, x.copy())
    if mode == "train":
        judge_masked(ctx, x, out, f"output of train-mode {where}")
        return
    check_finite(ctx, "output", out)
    differs = out.astype(np.float64) != x.astype(np.float64)
    if differs.any():
        first = tuple(np.argwhere(differs)[0])
        ctx.fail(f"output of eval-mode {where} is not the input in {describe_positions(differs)}; first got "
                 f"{float(out[first]):.9g} for x={float(x[first]):.9g} ({ctx.case.dtype})")


CHECKS = {"mode-switching": mode_switching}
