"""The check kinds a clause may name, and the fields each one takes.

This is the contract between spec files and the check functions in
``nnconform.checks``: the loader validates clauses against it, and a meta test
checks that every kind here has exactly one check function.
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPES = ("float16", "bfloat16", "float32", "float64")
MODES = ("train", "eval")
# How a clause sets the layer's state before its calls: "initial" leaves a new layer's
# own state; "drawn" loads drawn values (signed, of varied magnitude, the initial state
# among the draws) through the backend's load_state.
STATE_MODES = ("initial", "drawn")
VALUE_PROFILES = ("standard", "offset", "tiny-variance", "tiny-scale")
# Memory layouts of the input array a backend receives: C-contiguous; a strided view
# (every other element of a larger array along the last axis); and channels-last,
# where axis 1 varies fastest in memory (NHWC for a 4-d input, NDHWC for 5-d).
LAYOUTS = ("contiguous", "strided", "channels-last")

# Parameters of the scenario a check runs, which every clause may vary besides the
# layer's own constructor parameters: how many forward calls to make in the
# clause's mode, and how many training calls to make before switching to it.
SCENARIO_PARAMETERS = {
    "calls": {"kind": "int", "min": 0, "max": 64, "default": 1},
    "warmup": {"kind": "int", "min": 0, "max": 64, "default": 0},
}


@dataclass(frozen=True)
class CheckKind:
    name: str
    summary: str
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    needs_tolerance: bool = False
    statistical: bool = False
    needs_autograd: bool = False
    takes_state: bool = False
    needs: frozenset[str] = frozenset()  # family tables the check reads: "random", "normalization"


def _kind(name, summary, required=(), optional=(), needs=(), **flags) -> CheckKind:
    return CheckKind(name, summary, frozenset(required), frozenset(optional), needs=frozenset(needs), **flags)


_STAT = dict(required=("statistics",), statistical=True, needs=("random",))

CHECK_KINDS: dict[str, CheckKind] = {
    kind.name: kind
    for kind in [
        _kind("equals-input", "the output equals the input exactly"),
        _kind("equals-value", "every output unit equals the `expected` formula exactly", required=("expected",)),
        _kind("survivor-scale", "kept units equal x times the `expected` scale, within tolerance",
              required=("expected",), needs_tolerance=True, needs=("random",)),
        _kind("mask-values", "every unit is exactly 0 or x times the `expected` scale",
              required=("expected",), needs_tolerance=True, needs=("random",)),
        _kind("close-to-reference", "the `observe` fields match the float64 reference within tolerance",
              required=("observe",), needs_tolerance=True, takes_state=True, needs=("normalization",)),
        _kind("state-equals", "state fields equal the `expected` formulas exactly",
              required=("expected",), optional=("trainable",)),
        _kind("state-absent", "the named state `fields` are absent (None)", required=("fields",)),
        _kind("state-unchanged", "forward calls leave the named state `fields` unchanged", required=("fields",),
              takes_state=True),
        _kind("raises", "building or calling the layer raises `error`", required=("error", "when")),
        _kind("shape-dtype", "the output has the input's shape and dtype"),
        _kind("inplace", "inplace=True writes into the input; inplace=False leaves it untouched"),
        _kind("drop-rate", "the fraction of zeroed units matches p (exact binomial test)", **_STAT),
        _kind("position-uniformity", "every position is dropped at rate p over repeated calls", **_STAT),
        _kind("batch-independence", "samples in one call get independent masks", **_STAT),
        _kind("call-independence", "each call draws a fresh mask", **_STAT),
        _kind("serial-independence", "neighbouring and periodic units are uncorrelated", **_STAT),
        _kind("dispersion", "per-row zero counts have binomial variance", **_STAT),
        _kind("mean-preservation", "the expected output equals the input", **_STAT),
        _kind("moment-preservation", "for standard-normal input the output has the mean and second moment of the "
              "[random] model (alpha dropout: 0 and 1)", needs_tolerance=True, **_STAT),
        _kind("mode-switching", "alternating train and eval calls each behave as their mode specifies",
              required=("observe",), needs_tolerance=True, takes_state=True),
        _kind("gradient-mask", "the input gradient is grad_output times the forward call's own mask and scale",
              needs_tolerance=True, needs_autograd=True, needs=("random",)),
        _kind("gradient-reference", "input and trainable-state gradients match the float64 reference",
              needs_tolerance=True, needs_autograd=True, takes_state=True, needs=("normalization",)),
    ]
}
