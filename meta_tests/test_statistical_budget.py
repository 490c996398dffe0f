"""The suite's false-alarm budget, split by Bonferroni, and the sample sizes the specs state.

The budget (specs/suite.toml) is split evenly over every statistical decision of a
full default run. Each statistical clause states in its spec the sample size `n` it
draws at p = 0.5 and the default per-decision alpha; this module recomputes n from
nnconform.statistics, and runs each real check once to read the n it actually drew,
so the number in the spec cannot drift from what the harness does.
"""

from __future__ import annotations

import itertools
import math
import shutil

import pytest
from hypothesis import settings

from nnconform import moments, profiles, statistics
from nnconform.backends.reference_backend import ReferenceBackend
from nnconform.checks import CHECKS, CheckContext
from nnconform.checks.statistical import SERIAL_MIN_UNITS
from nnconform.items import all_items, decision_alpha, pinned_clauses, statistical_decisions
from nnconform.spec import default_spec_dir, load_specs
from nnconform.strategies import Case

SPECS = load_specs()
STATISTICAL = [c for c in SPECS.clauses if c.statistical]
DEFAULT_EXAMPLES = settings.get_profile(profiles.DEFAULT_PROFILE).max_examples
ALPHA = decision_alpha(SPECS, DEFAULT_EXAMPLES)
P = 0.5  # every statistical clause includes p = 0.5; the stated n is the one drawn there


def _shapes(clause, layer: str):
    """Every input shape the clause can draw for the layer, with whether it is batched."""
    ranges = [(clause.layer_ranks[layer], True), (clause.unbatched_ranks.get(layer), False)]
    sides = range(clause.input.side[0], clause.input.side[1] + 1)
    for bounds, batched in ranges:
        if bounds is None:
            continue
        for rank in range(max(bounds[0], clause.input.ranks[0]), min(bounds[1], clause.input.ranks[1]) + 1):
            for shape in itertools.product(sides, repeat=rank):
                yield shape, batched


def _units(clause, shape: tuple[int, ...], batched: bool) -> int:
    """The random units of an input: its elements, or its (sample, channel) pairs."""
    full = shape if batched else (1,) + shape
    axes = clause.model.random.unit_axes(len(full))
    return math.prod(n for axis, n in enumerate(full) if axis not in axes)


def _input_sizes(clause) -> list[int]:
    """Every unit count an input of the clause can have, over its layers."""
    return sorted({_units(clause, shape, batched) for layer in clause.layers for shape, batched in _shapes(clause, layer)})


def required_n(clause, alpha: float) -> tuple[int, int]:
    """(n, input size at which it is drawn): the sample size the clause's check draws
    at p = 0.5 and this alpha, and the input size that needs it: for checks whose n
    depends on the input, the largest n over every input the clause can draw."""
    power, delta = clause.statistics["power"], clause.statistics["delta"]
    if clause.check == "drop-rate":
        return statistics.drop_rate_sample_size(P, alpha, delta, power), 1
    if clause.check == "mean-preservation":
        return statistics.mean_preservation_sample_size(P, alpha, delta, power), 1
    if clause.check in ("batch-independence", "call-independence"):
        return statistics.agreement_sample_size(P, alpha, delta, power), 1
    if clause.check == "serial-independence":
        return max(SERIAL_MIN_UNITS, statistics.serial_sample_size(P, alpha, delta, power)), 1
    if clause.check == "position-uniformity":
        return max((statistics.position_uniformity_sample_size(P, size, alpha, delta, power), size)
                   for size in _input_sizes(clause))
    if clause.check == "dispersion":
        return max((statistics.dispersion_sample_size(P, size, alpha, power), size) for size in _input_sizes(clause))
    if clause.check == "moment-preservation":
        dropped, scale, shift = clause.model.random.values({"p": P})
        return moments.moment_sample_size(P, alpha, delta, power, dropped, scale, shift), 1
    raise AssertionError(f"{clause.id}: no sample-size rule for check kind {clause.check!r}; add one here")


def test_bonferroni_split_of_the_suite_budget():
    decisions = statistical_decisions(SPECS, DEFAULT_EXAMPLES)
    counted = sum(len(c.layers) * len(c.input.dtypes) * (max(1, math.ceil(DEFAULT_EXAMPLES * c.examples))
                                                          + len(pinned_clauses(c))) for c in STATISTICAL)
    assert decisions == counted, (f"{decisions} decisions counted by items.py, {counted} by clause x layer x dtype x "
                                  "(examples + pinned values)")
    assert SPECS.false_alarm_budget == 1e-4
    assert ALPHA * decisions == pytest.approx(1e-4, rel=1e-12), f"alpha {ALPHA} x {decisions} decisions != 1e-4"
    assert ALPHA == statistics.bonferroni(SPECS.false_alarm_budget, decisions)


@pytest.mark.parametrize("max_examples", [1, 3, 20, 200])
def test_more_examples_shrink_alpha_and_keep_the_bound(max_examples):
    alpha = decision_alpha(SPECS, max_examples)
    assert alpha * statistical_decisions(SPECS, max_examples) == pytest.approx(SPECS.false_alarm_budget, rel=1e-12)
    if max_examples > 1:
        assert alpha <= decision_alpha(SPECS, max_examples - 1)


def test_adding_a_statistical_clause_keeps_the_bound(tmp_path):
    spec_dir = tmp_path / "specs"
    shutil.copytree(default_spec_dir(), spec_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    path = spec_dir / "dropout.toml"
    text = path.read_text()
    start = text.index('[[clause]]\nid = "dropout.train.drop-rate"')
    block = text[start:text.index("[[clause]]", start + 1)]
    copy = block.replace('"dropout.train.drop-rate"', '"dropout.train.drop-rate-again"').replace(
        "examples = 0.25", "examples = 0.5")
    path.write_text(text + "\n" + copy)
    grown = load_specs(spec_dir)
    again = grown.by_id("dropout.train.drop-rate-again")
    added = len(again.input.dtypes) * (math.ceil(DEFAULT_EXAMPLES * 0.5) + len(pinned_clauses(again)))
    assert statistical_decisions(grown, DEFAULT_EXAMPLES) == statistical_decisions(SPECS, DEFAULT_EXAMPLES) + added
    assert decision_alpha(grown, DEFAULT_EXAMPLES) < ALPHA
    assert (decision_alpha(grown, DEFAULT_EXAMPLES) * statistical_decisions(grown, DEFAULT_EXAMPLES)
            == pytest.approx(1e-4, rel=1e-12))


def test_non_statistical_items_take_no_share():
    statistical_items = [i for i in all_items(SPECS) if i.clause.statistical]
    assert statistical_items and len(statistical_items) < len(all_items(SPECS))
    assert statistical_decisions(SPECS, DEFAULT_EXAMPLES) == sum(i.examples(DEFAULT_EXAMPLES) + len(pinned_clauses(i.clause))
                                                                 for i in statistical_items)


@pytest.mark.parametrize("clause", STATISTICAL, ids=lambda c: c.id)
def test_every_statistical_clause_states_its_guarantee(clause):
    stats = clause.statistics
    assert 0.5 < stats["power"] < 1 and 0 < stats["delta"] <= 1 and stats["why"].strip()
    assert isinstance(stats["n"], int) and stats["n"] >= 1
    domain = clause.params["p"]
    assert P in domain.include or P in domain.choices, f"{clause.id}: n is stated at p = {P}, which it must draw"


@pytest.mark.parametrize("clause", STATISTICAL, ids=lambda c: c.id)
def test_the_stated_n_is_the_n_the_statistics_require(clause):
    n, size = required_n(clause, ALPHA)
    if size > 1:
        assert f"({size} " in clause.statistics["n_counts"], (
            f"{clause.id}: n depends on the input and is drawn for {size} units; n_counts must say so")
    assert clause.statistics["n"] == n, (
        f"{clause.id}: the spec states n = {clause.statistics['n']}, but at p = {P} and the default alpha "
        f"{ALPHA:.3g} ({len(STATISTICAL)} statistical clauses, {statistical_decisions(SPECS, DEFAULT_EXAMPLES)} "
        f"decisions) the check draws n = {n}: update statistics.n in {clause.source}")


def _shape_of(size: int, clause) -> tuple[str, tuple[int, ...], bool]:
    """A layer and an input shape with `size` units that the clause can draw (size 1:
    n does not depend on the input, and any input will do)."""
    for layer in clause.layers:
        for shape, batched in _shapes(clause, layer):
            if size == 1 or _units(clause, shape, batched) == size:
                return layer, shape, batched
    raise AssertionError(f"{clause.id} cannot draw an input of {size} units")


@pytest.mark.parametrize("clause", STATISTICAL, ids=lambda c: c.id)
def test_the_stated_n_is_what_the_check_draws(clause):
    """Run the real check once on the reference backend at p = 0.5 and the default
    alpha, on the input the stated n is for, and read the n of its decision."""
    _, size = required_n(clause, ALPHA)
    layer, shape, batched = _shape_of(size, clause)
    case = Case(layer, "float32", "train", {"p": P, "inplace": False}, {"calls": 1, "warmup": 0},
                shape, "standard", 0, 0, batched=batched)
    context = CheckContext(clause, case, ReferenceBackend(), ALPHA)
    CHECKS[clause.check](context)
    assert context.evidence["n"] == clause.statistics["n"], (
        f"{clause.id}: the check drew n = {context.evidence['n']} on input shape {case.shape}, "
        f"the spec states {clause.statistics['n']}")
    assert context.evidence["alpha"] == ALPHA


@pytest.mark.parametrize("clause", STATISTICAL, ids=lambda c: c.id)
def test_the_stated_alpha_is_the_default_runs_share_of_the_budget(clause):
    """Each statistical clause states the alpha its decisions use in a default run."""
    assert clause.statistics["alpha"] == pytest.approx(ALPHA, rel=1e-9), (
        f"{clause.id} states alpha {clause.statistics['alpha']:g}, but a default run gives each decision {ALPHA:g}; "
        "update the spec")
