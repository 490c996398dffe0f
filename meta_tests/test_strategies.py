"""The generators reach what the specs promise.

``hypothesis.find`` searches each real clause's strategy for a case with a given
property (rank 3, batch size 1, p = 1, momentum None, ...); finding one proves the
generator can reach it. ``@given`` tests check constraints on every draw. Finds are
derandomized, so the outcome is the same on every run.
"""

from __future__ import annotations

import dataclasses
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample, Unsatisfiable

from nnconform.checks import CHECKS, CheckContext
from nnconform.dtypes import numpy_dtype
from nnconform.items import all_items
from nnconform.spec import load_specs
from nnconform.strategies import VALUE_PROFILES, Case, draw_case
from nnconform.vocabulary import DTYPES

SPECS = load_specs()
PAIRS = [(clause, layer) for clause in SPECS.clauses for layer in clause.layers]
FIND = settings(max_examples=3000, derandomize=True, database=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))


class _Drawer:
    """Adapts a composite's ``draw`` to the ``data.draw(strategy, label=...)`` that
    draw_case expects, so the real generator runs inside find and @given."""

    def __init__(self, draw):
        self._draw = draw

    def draw(self, strategy, label=None):
        return self._draw(strategy)


@st.composite
def cases(draw, clause, layer, dtype=None):
    return draw_case(_Drawer(draw), clause, layer, dtype or clause.input.dtypes[0])


def reach(clause, layer, condition, what, dtype=None) -> Case:
    """A drawn case satisfying condition, or a failure naming what was not reached."""
    try:
        return find(cases(clause, layer, dtype), condition, settings=FIND)
    except (NoSuchExample, Unsatisfiable) as error:
        pytest.fail(f"{clause.id} on {layer}: the generator never drew {what} ({type(error).__name__})")


def rank_range(clause, layer) -> list[int]:
    """Every input rank the clause can draw for the layer, with or without a batch axis."""
    ranks = set()
    for bounds in (clause.layer_ranks[layer], clause.unbatched_ranks.get(layer)):
        if bounds is not None:
            ranks.update(range(max(bounds[0], clause.input.ranks[0]), min(bounds[1], clause.input.ranks[1]) + 1))
    return sorted(ranks)


def pair_id(pair) -> str:
    return f"{pair[0].id}:{pair[1]}"


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_every_valid_rank_is_drawn(pair):
    clause, layer = pair
    assert len(rank_range(clause, layer)) >= 1, f"{clause.id} on {layer} has no valid rank"
    for rank in rank_range(clause, layer):
        reach(clause, layer, lambda c: len(c.shape) == rank, f"an input of rank {rank}")


def _batch_one_valid(clause, layer) -> bool:
    """N = 1 is a valid input unless the sides start above 1, or training needs two
    values per channel and the layer has no spatial axes to supply them."""
    if clause.input.side[0] > 1:
        return False
    per_channel = clause.input.per_channel
    return per_channel is None or per_channel[0] == 1 or max(rank_range(clause, layer)) >= 3


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_shapes_reach_batch_one_odd_sizes_and_equal_axes(pair):
    clause, layer = pair
    ranks = rank_range(clause, layer)
    if _batch_one_valid(clause, layer) and max(ranks) >= 1:
        reach(clause, layer, lambda c: len(c.shape) >= 1 and c.shape[0] == 1, "batch size 1")
    if clause.input.side[1] >= 3 and max(ranks) >= 1 and clause.input.per_channel != (1, 1):
        reach(clause, layer, lambda c: any(s % 2 == 1 and s >= 3 for s in c.shape), "an odd size >= 3")
    if max(ranks) >= 2 and clause.input.per_channel != (1, 1):
        reach(clause, layer, lambda c: len(set(c.shape)) < len(c.shape) and max(c.shape) >= 2,
              "two equal axes of size >= 2")


def test_every_dtype_runs_for_every_layer():
    items = all_items(SPECS)
    layers = {layer for clause in SPECS.clauses for layer in clause.layers}
    for layer in layers:
        drawn = {item.dtype for item in items if item.layer == layer}
        assert drawn == set(DTYPES), f"{layer} runs with {sorted(drawn)}, expected every dtype {list(DTYPES)}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_batches_are_in_the_case_dtype_and_deterministic(dtype):
    clause = SPECS.by_id("batchnorm.train.output")
    case = reach(clause, "BatchNorm2d", lambda c: c.values == "offset", "the offset profile", dtype=dtype)
    x = case.batch(0)
    assert x.dtype == numpy_dtype(dtype) and x.shape == case.shape
    np.testing.assert_array_equal(case.batch(0).astype(np.float64), x.astype(np.float64))
    standard = dataclasses.replace(case, values="standard")  # float16 rounds offset values to one number
    assert not np.array_equal(standard.batch(1), standard.batch(0)), "every call would see the same batch"


def _profiles_of(clause) -> list[str]:
    return [v for v in clause.input.values if v != "standard"]


@pytest.mark.parametrize("clause", [c for c in SPECS.clauses if _profiles_of(c)], ids=lambda c: c.id)
def test_offset_and_tiny_variance_profiles_are_drawn(clause):
    # 50 units make the sample's mean and spread meaningful; a clause whose inputs are
    # one value per channel (per_channel = [1, 1]) draws small inputs, so 8 units there.
    small = clause.input.per_channel is not None and clause.input.per_channel[1] == 1
    need = 8 if small else 50
    for profile in _profiles_of(clause):
        loc, scale, _ = VALUE_PROFILES[profile]
        case = reach(clause, clause.layers[0], lambda c: c.values == profile and math.prod(c.shape) >= need,
                     f"the {profile} profile on {need}+ units", dtype="float64")
        x = case.batch(0)
        assert abs(x.mean() - loc) < 6 * scale, f"{profile}: mean {x.mean()} far from {loc}"
        assert 0.3 * scale < x.std() < 3 * scale, f"{profile}: std {x.std()} not of the order {scale}"
    assert VALUE_PROFILES["offset"][0] == 1e4
    assert VALUE_PROFILES["tiny-variance"][1] ** 2 < 1e-5, "tiny-variance must be far below the default eps"


def _domain(clause, name):
    return clause.params.get(name)


def _contains(domain, value) -> bool:
    if domain is None:
        return False
    if value is None:
        return domain.nullable or None in domain.choices
    if domain.choices:
        return value in domain.choices
    return domain.min <= value <= domain.max


PARAM_TARGETS = [("p", 0.0), ("p", 1.0), ("momentum", None), ("affine", True), ("affine", False),
                 ("track_running_stats", True), ("track_running_stats", False), ("inplace", True),
                 ("inplace", False), ("eps", 1e-5)]
PARAM_CASES = [(clause, name, value) for clause in SPECS.clauses for name, value in PARAM_TARGETS
               if _contains(_domain(clause, name), value)]


@pytest.mark.parametrize("clause, name, value", PARAM_CASES, ids=lambda v: v.id if hasattr(v, "id") else repr(v))
def test_parameter_values_in_the_domain_are_drawn(clause, name, value):
    """Every edge the domain includes is drawn: p = 0 and p = 1, momentum None, both
    values of each bool, the default eps."""
    reach(clause, clause.layers[0],
          lambda c: c.params[name] is value if value is None or isinstance(value, bool) else c.params[name] == value,
          f"{name} = {value!r}")


def test_every_edge_target_is_exercised_somewhere():
    """The targets above are not vacuous: each one lies in the domain of some clause."""
    assert {(name, value) for _, name, value in PARAM_CASES} == set(PARAM_TARGETS)


@pytest.mark.parametrize("clause", [c for c in SPECS.clauses if _domain(c, "eps") and not _domain(c, "eps").choices],
                         ids=lambda c: c.id)
def test_eps_varies_across_its_range(clause):
    domain = _domain(clause, "eps")
    given = lambda c: c.params["eps"] is not None  # a nullable eps is also drawn as None
    reach(clause, clause.layers[0], lambda c: given(c) and c.params["eps"] >= domain.max / 2, "a large eps")
    reach(clause, clause.layers[0], lambda c: given(c) and c.params["eps"] <= domain.min * 10, "a small eps")
    reach(clause, clause.layers[0], lambda c: given(c) and c.params["eps"] not in domain.include,
          "an eps off the include list")


def test_momentum_none_and_a_float_in_the_same_clause():
    clause = SPECS.by_id("batchnorm.train.output")
    reach(clause, "BatchNorm1d", lambda c: c.params["momentum"] is None, "momentum None")
    reach(clause, "BatchNorm1d", lambda c: c.params["momentum"] is not None and 0 < c.params["momentum"] < 1,
          "momentum strictly between 0 and 1")


PER_CHANNEL_PAIRS = [(c, layer) for c, layer in PAIRS if c.input.per_channel is not None]


@pytest.mark.parametrize("pair", PER_CHANNEL_PAIRS, ids=pair_id)
def test_per_channel_constraints_hold_on_every_draw(pair):
    clause, layer = pair
    low, high = clause.input.per_channel

    @settings(max_examples=150, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases(clause, layer))
    def per_channel_count(case):
        # the axes whose extent adds members to a statistic, on the batched shape
        full = case.shape if case.batched else (1,) + case.shape
        norm = clause.model.normalization if clause.model else None
        axes = norm.reduced_axes(len(full)) if norm else (0,) + tuple(range(2, len(full)))
        count = math.prod(full[a] for a in axes)
        assert low <= count <= high, f"{clause.id}: shape {case.shape} has {count} values per statistic, not in [{low}, {high}]"
        if "num_features" in case.params:
            assert case.params["num_features"] == full[1]

    per_channel_count()


class _RecordingReference:
    """The reference as a backend, recording every array forward receives."""
    name = "recording-reference"

    def __init__(self):
        from nnconform.backends.reference_backend import ReferenceBackend
        self._inner, self.received = ReferenceBackend(), []

    def seed(self, seed):
        self._inner.seed(seed)

    def build(self, layer, params, dtype):
        built, received = self._inner.build(layer, params, dtype), self.received

        class Recording:
            def __getattr__(self, name):
                return getattr(built, name)

            def forward(self, x):
                received.append(np.array(x, copy=True))
                return built.forward(x)
        return Recording()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_reference_is_computed_from_the_input_rounded_to_the_dtype(dtype):
    """Around 1e4, float16 values are 8 apart (bfloat16's 64), so rounding an offset
    batch moves every value by up to half a step. Judged against the unrounded draw, a
    perfect layer would be blamed for that. The check gives the backend the rounded
    batch and the reference those same values, so the float64 reference passes."""
    clause = SPECS.by_id("batchnorm.train.running-update")
    case = Case("BatchNorm1d", dtype, "train",
                {"num_features": 3, "eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True},
                {"calls": 1, "warmup": 0}, (64, 3), "offset", 7, 7)
    backend = _RecordingReference()
    CHECKS["close-to-reference"](CheckContext(clause, case, backend))
    x = case.batch(0)
    assert x.dtype == numpy_dtype(dtype)
    np.testing.assert_array_equal(backend.received[0].astype(np.float64), x.astype(np.float64))

    loc, scale, steps = VALUE_PROFILES["offset"]
    spread = max(scale, steps * float(ml_dtypes.finfo(numpy_dtype(dtype)).eps) * 8192)
    unrounded = loc + spread * np.random.default_rng([case.value_seed, 0]).standard_normal(case.shape)
    assert np.abs(x.astype(np.float64) - unrounded).max() > 1.0, "the rounding does not matter here"

