"""What the run does to stay fast must not change what it decides.

- repeated_dropped_units judges many calls in one numpy pass: it must give exactly the
  masks that one dropped_units per call gives, and fail the same way on a bad output;
- a pinned example that exercises nothing is not redrawn (at p = 0.99999 every redraw
  tiles millions of elements), but the item still needs its drawn examples to exercise
  the clause;
- an item expected to fail is not shrunk, and still fails with its clause's message;
- one drawn seed stands for three independent ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnconform.backends.reference_backend import ReferenceBackend
from nnconform.checks import CHECKS, CheckContext, ClauseFailure
from nnconform.checks.masks import dropped_units, repeated_dropped_units
from nnconform.items import Item
from nnconform.runner import Runner
from nnconform.spec import load_specs
from nnconform.strategies import Case, derived_seeds

SPECS = load_specs()


def _context(clause_id: str, layer: str, shape, batched=True, backend=None, p=0.5) -> CheckContext:
    clause = SPECS.by_id(clause_id)
    backend = backend or ReferenceBackend()
    backend.use_specs(SPECS)
    params = {"p": p, "inplace": False}
    case = Case(layer, "float32", "train", params, {"calls": 1, "warmup": 0}, tuple(shape), "standard", 3, 11,
                batched=batched)
    return CheckContext(clause, case, backend, alpha=1e-6)


@pytest.mark.parametrize("clause_id, layer, shape, batched", [
    ("dropout.train.position-uniformity", "Dropout", (3, 4), True),
    ("channel-dropout.train.position-uniformity", "Dropout2d", (2, 3, 2, 2), True),
    ("channel-dropout.train.position-uniformity", "Dropout1d", (3, 5), False),
    ("alpha-dropout.train.drop-rate", "AlphaDropout", (2, 3), True),
])
def test_repeated_masks_equal_one_judgement_per_call(clause_id, layer, shape, batched):
    calls = 7
    one = _context(clause_id, layer, shape, batched)
    x = one.case.batch(0)
    layer_one = one.prepare()  # builds and seeds
    per_call = np.stack([dropped_units(one, layer_one, x).ravel() for _ in range(calls)])
    many = _context(clause_id, layer, shape, batched)
    together = repeated_dropped_units(many, many.prepare(), x, calls)
    assert together.dtype == bool and together.shape == per_call.shape
    assert np.array_equal(together, per_call)
    assert 0 < together.sum() < together.size  # p = 0.5: both fates occur, so the test compares something


class _PartlyDroppedChannel(ReferenceBackend):
    """Channel dropout whose third call zeroes one element of a kept channel."""

    def build(self, layer, params, dtype):
        inner = super().build(layer, params, dtype)
        calls = {"n": 0}
        original = inner.forward

        def forward(x):
            out = np.array(original(x))
            calls["n"] += 1
            if calls["n"] == 3:
                kept = np.argwhere(out != 0)
                out[tuple(kept[0])] = 0
            return out

        inner.forward = forward
        return inner


def test_a_partly_dropped_channel_in_any_call_fails_with_the_per_call_message():
    ctx = _context("channel-dropout.train.position-uniformity", "Dropout2d", (2, 3, 2, 2),
                   backend=_PartlyDroppedChannel())
    with pytest.raises(ClauseFailure, match=r"partly dropped \(Dropout2d, input shape \(2, 3, 2, 2\)"):
        repeated_dropped_units(ctx, ctx.prepare(), ctx.case.batch(0), 5)


class _NothingKeptAtHighP(ReferenceBackend):
    """Correct, except that above p = 0.999 it drops every unit: a tiled input then
    never has a survivor, so survivor-scale has nothing to judge."""

    def build(self, layer, params, dtype):
        inner = super().build(layer, params, dtype)
        if params.get("p", 0) > 0.999:
            inner.forward = lambda x: np.zeros_like(x)
        self.builds = getattr(self, "builds", 0) + 1
        return inner


def _runner(backend) -> Runner:
    backend.use_specs(SPECS)
    return Runner(backend, "reference", base_seed=5, max_examples=5, alpha=1e-6)


def _item(clause_id: str, layer: str, dtype: str = "float32") -> Item:
    return Item(SPECS.by_id(clause_id), layer, dtype)


def test_a_pinned_example_that_exercises_nothing_is_not_redrawn():
    """dropout.train.survivor-scale pins p = 0.99999. Before, Hypothesis replaced an
    unexercised pinned example until its retry limit (hundreds of multi-million-element
    calls); now it costs one call, and the drawn examples decide the item."""
    backend = _NothingKeptAtHighP()
    evidence: dict = {}
    _runner(backend).run(_item("dropout.train.survivor-scale", "Dropout"), evidence)
    pinned = len([v for v in SPECS.by_id("dropout.train.survivor-scale").params["p"].include])
    assert evidence["examples"] <= pinned + 5 * 10  # not hundreds of redraws of the pinned value
    assert backend.builds <= pinned + 5 * 10


class _NeverKept(ReferenceBackend):
    def build(self, layer, params, dtype):
        inner = super().build(layer, params, dtype)
        inner.forward = lambda x: np.zeros_like(x)
        return inner


def test_an_item_no_drawn_example_exercised_still_fails_as_never_exercised():
    with pytest.raises(pytest.fail.Exception, match="never exercised"):
        _runner(_NeverKept()).run(_item("dropout.train.survivor-scale", "Dropout"), {})


class _WrongScale(ReferenceBackend):
    def build(self, layer, params, dtype):
        inner = super().build(layer, params, dtype)
        original = inner.forward
        inner.forward = lambda x: np.asarray(original(x)) * 1.5
        return inner


def test_an_expected_failure_is_not_shrunk_but_fails_with_the_clause_message():
    item = _item("dropout.train.survivor-scale", "Dropout")
    with pytest.raises(pytest.fail.Exception, match=r"\[dropout.train.survivor-scale\] kept units are not") as shrunk:
        _runner(_WrongScale()).run(item, {})
    with pytest.raises(pytest.fail.Exception, match=r"\[dropout.train.survivor-scale\] kept units are not") as first:
        _runner(_WrongScale()).run(item, {}, shrink=False)
    assert "reproduce with:" in str(first.value) and "reproduce with:" in str(shrunk.value)


def test_one_drawn_seed_gives_three_distinct_deterministic_seeds():
    seeds = derived_seeds(12345)
    assert seeds == derived_seeds(12345)
    assert len(set(seeds)) == 3 and all(0 <= s < 2**32 for s in seeds)
    assert derived_seeds(12346) != seeds
    assert len({derived_seeds(s)[0] for s in range(1000)}) == 1000
