"""Hypothesis strategies derived from a clause's parameter and input domains.

Every draw carries a label, so a falsifying example reads as a list of named
choices: the parameters, the shape, the value profile and the seeds.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from nnconform.dtypes import dtype_eps, numpy_dtype
from nnconform.spec import Clause, Domain

# Value profiles: (location, scale, minimum spread) of the normally distributed input
# values. The offset profile puts the mean near 1e4, where float16 values are 8 apart
# and bfloat16 values 64; its spread is at least 8 of those steps, so that rounding to
# a 16-bit dtype does not collapse every value into one (a batch variance of zero
# would tell nothing). The tiny-variance profile makes the batch variance far smaller
# than eps; the tiny-scale profile does the same for the mean square, which a
# normalization without centering (a root mean square) divides by.
VALUE_PROFILES = {"standard": (0.0, 1.0, 0), "offset": (1.0e4, 1.0, 8), "tiny-variance": (1.0, 1.0e-3, 0),
                  "tiny-scale": (0.0, 1.0e-3, 0)}
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Case:
    """One drawn example: everything needed to build, feed and judge a layer."""
    layer: str
    dtype: str
    mode: str
    params: dict
    scenario: dict
    shape: tuple[int, ...]
    values: str
    value_seed: int
    seed: int
    layout: str = "contiguous"
    batched: bool = True
    state_draw: tuple[float, int] | None = None  # (magnitude, seed) of drawn state; None: initial

    def names(self) -> dict[str, float]:
        """Values for formulas: numeric parameters and scenario counts, None as NaN."""
        merged = {**self.params, **self.scenario}
        return {k: (math.nan if v is None else float(v)) for k, v in merged.items()
                if v is None or isinstance(v, (bool, int, float))}

    def as_batched(self, x: np.ndarray) -> np.ndarray:
        """x with its batch axis: unbatched inputs gain a leading axis of one."""
        return x if self.batched else x[np.newaxis]

    def drawn_state(self, family, conventions: dict | None = None) -> dict:
        """Values to load into the layer's state: signed, of the drawn magnitude; positive
        where the field must be (a variance); counters from 0 to 1000. Deterministic in the
        draw. Empty when the case keeps the layer's initial state."""
        if self.state_draw is None:
            return {}
        magnitude, seed = self.state_draw
        rng = np.random.default_rng([seed, 7])
        values = {}
        for name, value in family.initial_state(self.params, conventions).items():
            spec = family.state[name]
            if value is None:
                continue
            if spec.count:
                values[name] = int(rng.integers(0, 1001))
            elif spec.positive:
                values[name] = magnitude * np.exp(rng.uniform(-1.5, 1.5, np.shape(value)))
            else:
                values[name] = magnitude * rng.standard_normal(np.shape(value))
        return values

    def batch(self, index: int = 0, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The index-th input batch, rounded to the case's dtype. Deterministic in
        (value_seed, index), so the backend and the reference see the same inputs."""
        loc, scale, steps = VALUE_PROFILES[self.values]
        if steps and loc:
            scale = max(scale, steps * dtype_eps(self.dtype) * 2.0 ** math.floor(math.log2(abs(loc))))
        rng = np.random.default_rng([self.value_seed, index])
        values = loc + scale * rng.standard_normal(shape or self.shape)
        return values.astype(numpy_dtype(self.dtype))

    def arrange(self, x: np.ndarray) -> np.ndarray:
        """x with the same values in the case's memory layout (vocabulary.LAYOUTS): x
        itself when contiguous, else a new array with the layout's strides."""
        if self.layout == "contiguous" or x.ndim == 0:
            return x
        if self.layout == "strided":
            out = np.empty(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)[..., ::2]
        else:  # channels-last: axis 1 varies fastest in memory
            out = np.moveaxis(np.empty(np.moveaxis(x, 1, -1).shape, dtype=x.dtype), -1, 1) if x.ndim >= 2 else np.empty_like(x)
        out[...] = x
        return out

    def warmup_batch(self, index: int) -> np.ndarray:
        """A training batch for the warmup calls. A batched one has one more sample than
        the observed input, so training is valid even when an eval-mode clause observes
        an input with one value per channel; an unbatched one (no sample axis to grow)
        has the observed input's shape."""
        grown = self.shape and self.batched
        return self.batch(index, (self.shape[0] + 1,) + self.shape[1:] if grown else None)


def domain_strategy(domain: Domain, supports=None, pool: tuple[int, int] | None = None) -> st.SearchStrategy | None:
    """The values of one parameter's domain that the backend supports (``supports(value)``
    is False for values it declared unsupported); None when no value is left. With
    ``pool = (count, seed)``, a float range is drawn from ``count`` values fixed by the
    seed (pooled_values), not from the whole range."""
    supports = supports or (lambda value: True)
    if domain.choices:
        choices = [v for v in domain.choices if supports(v)]
        if not choices:
            return None
        base = st.sampled_from(choices)
    elif domain.kind == "int":
        base = st.integers(int(domain.min), int(domain.max)).filter(supports)
    elif pool is not None:
        values = pooled_values(domain, *pool, supports)
        if not values:
            return None
        base = st.sampled_from(values)
    else:
        # Subnormal parameters (below 2.2e-308) are no meaningful layer setting.
        # The domain's include values are not mixed in here: each runs once per item as a
        # pinned example (items.pinned_clauses), on every run; drawing them again at
        # Hypothesis's branch odds (one example in six) only repeats the costliest inputs.
        base = st.floats(domain.min, domain.max, allow_nan=False, allow_subnormal=False).filter(supports)
    return (st.none() | base) if domain.nullable and supports(None) else base


def pooled_values(domain: Domain, count: int, seed: int, supports=None) -> tuple[float, ...]:
    """``count`` distinct values of a float range, fixed by ``seed`` and the domain: for a
    backend that compiles every value of the parameter into its code (Capabilities.
    value_pools), so that a run compiles ``count`` programs per domain, not one per
    example. Every item with the same domain gets the same values; another seed, others.
    Stratified: the range is cut into ``count`` equal parts and each gives one value, so
    that two values are one low and one high; log-uniform over a range above zero that
    spans two decades or more (eps), else uniform."""
    supports = supports or (lambda value: True)
    low, high = float(domain.min), float(domain.max)
    rng = np.random.default_rng([seed, zlib.crc32(f"{domain.name}:{low!r}:{high!r}".encode())])
    logarithmic = low > 0 and high / low >= 100
    values: list[float] = []
    for attempt in range(100 * count):
        if len(values) == count:
            break
        u = (len(values) + rng.random()) / count if attempt < 10 * count else rng.random()
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if logarithmic else low + u * (high - low)
        value = min(max(value, low), high)
        if supports(value) and value not in values:
            values.append(value)
    return tuple(values)


def shape_strategy(clause: Clause, layer: str) -> st.SearchStrategy[tuple[tuple[int, ...], bool]]:
    """(shape, batched): shapes of every valid rank for the layer, with odd sizes, batch
    size 1, and sometimes two axes forced equal (where a wrong channel axis hides)."""
    ranges = [(r, b) for r, b in ((clause.layer_ranks[layer], True), (clause.unbatched_ranks.get(layer), False))
              if r is not None and max(r[0], clause.input.ranks[0]) <= min(r[1], clause.input.ranks[1])]
    ranks = tuple((rank, batched) for (low, high), batched in ranges
                  for rank in range(max(low, clause.input.ranks[0]), min(high, clause.input.ranks[1]) + 1))
    normalization = clause.model.normalization if clause.model else None
    return _shapes(ranks, tuple(clause.input.side), clause.input.per_channel, normalization)


@functools.lru_cache(maxsize=None)
def _shapes(ranks: tuple, side: tuple[int, int], per_channel, normalization) -> st.SearchStrategy:
    """One strategy per distinct input domain, shared by every item and pinned clause that
    has it: Hypothesis reads a composite's source when it is defined (tens of ms each).
    The sides of each rank are a fixed-length tuple of integers, one choice per axis."""
    sides = {rank: st.tuples(*[st.integers(*side)] * rank) for rank, _ in ranks}
    pairs = {rank: st.sampled_from([(i, j) for i in range(rank) for j in range(i + 1, rank)]) for rank, _ in ranks}
    choose_rank = st.sampled_from(ranks)

    @st.composite
    def shapes(draw):
        rank, batched = draw(choose_rank, label="rank")
        shape = list(draw(sides[rank], label="sides"))
        if rank >= 2 and draw(st.booleans(), label="two axes equal"):
            i, j = draw(pairs[rank], label="equal axes")
            shape[j] = shape[i]
        if per_channel is not None and rank >= 2:
            shape = _members(shape, batched, per_channel, normalization)
        return tuple(shape), batched

    return shapes()


def _members(shape: list[int], batched: bool, per_channel: tuple[int, int], normalization) -> list[int]:
    """The shape adjusted so each statistic has between per_channel[0] and [1] members."""
    full = shape if batched else [1] + shape
    axes = normalization.reduced_axes(len(full)) if normalization else (0,) + tuple(range(2, len(full)))
    real = [a for a in axes if batched or a > 0]
    if per_channel[1] == 1:
        for a in real:
            full[a] = 1
    count = math.prod(full[a] for a in axes)
    if count < per_channel[0] and real:
        grow = real[0]
        full[grow] = math.ceil(per_channel[0] / max(1, count // full[grow]))
    return full if batched else full[1:]


_CACHE: dict[tuple, tuple[Clause, dict]] = {}


def _strategies(clause: Clause, layer: str, supports, pools=None) -> dict[str, st.SearchStrategy | None]:
    """Every strategy of one item, built once: Hypothesis inspects a strategy when it is
    first drawn from, so rebuilding them per example costs more than the draws.
    ``pools``: (seed, ((name, count), ...)) for the float parameters drawn from pools."""
    key = (id(clause), layer, supports, pools)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is clause:
        return cached[1]
    seed, counts = pools if pools else (0, ())
    counts = dict(counts)
    strategies = {name: domain_strategy(domain, functools.partial(supports, name, layer=layer) if supports else None,
                                        (counts[name], seed) if name in counts else None)
                  for name, domain in clause.params.items()}
    strategies.update({
        "mode": st.sampled_from(clause.modes), "shape": shape_strategy(clause, layer),
        "values": st.sampled_from(clause.input.values), "seed": st.integers(0, SEED_MAX),
        "layout": st.sampled_from(clause.input.layouts),
        "state": st.sampled_from(["initial", "drawn"]) if clause.options.get("state") == "drawn" else None,
        "magnitude": st.sampled_from([0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0]),
    })
    _CACHE[key] = (clause, strategies)
    return strategies


def unsupported_values(clause: Clause, supports, layer: str | None = None) -> str | None:
    """Why the clause cannot run (for ``layer``, by default its first) on a backend whose
    ``supports(name, value, layer=...)`` rules out every value of one of its parameters;
    None when every domain keeps a value."""
    layer = layer or clause.layers[0]
    strategies = _strategies(clause, layer, supports)
    for name in clause.params:
        if strategies[name] is None:
            values = clause.params[name].choices
            return f"the backend declares {name}={'/'.join(map(repr, values))} unsupported, the only value(s) this clause uses"
    for name, value in clause.defaults.items():  # a parameter the clause does not vary takes its default
        if name not in clause.params and not supports(name, value, layer=layer):
            return f"the backend declares {name}={value!r} unsupported, the family's default, which this clause uses"
    return None


def derived_seeds(seed: int) -> tuple[int, int, int]:
    """(value seed, backend seed, state seed) from the one drawn seed. Each Hypothesis
    choice costs about 0.1 ms, so one draw stands for three: the three stay independent
    (SeedSequence spreads them), and a falsifying example still replays from its draws."""
    value_seed, backend_seed, state_seed = np.random.SeedSequence(seed).generate_state(3)
    return int(value_seed), int(backend_seed), int(state_seed)


def draw_case(data, clause: Clause, layer: str, dtype: str, supports=None, pools=None) -> Case:
    """Draw one example from the strategy space of (clause, layer, dtype); ``pools`` as
    for _strategies."""
    strategies = _strategies(clause, layer, supports, pools)
    drawn = {name: data.draw(strategies[name], label=name) for name in clause.params}
    values = {**clause.defaults, **drawn}
    mode = data.draw(strategies["mode"], label="mode")
    shape, batched = data.draw(strategies["shape"], label="shape")
    profile = data.draw(strategies["values"], label="values")
    value_seed, seed, state_seed = derived_seeds(data.draw(strategies["seed"], label="seed"))
    layout = data.draw(strategies["layout"], label="layout")
    state_draw = None
    if strategies["state"] is not None and data.draw(strategies["state"], label="state") == "drawn":
        state_draw = (data.draw(strategies["magnitude"], label="state magnitude"), state_seed)
    scenario = {name: values.pop(name) for name in ("calls", "warmup")}
    _derive(data, clause, values, shape, batched)
    return Case(layer, dtype, mode, values, scenario, shape, profile, value_seed, seed, layout=layout,
                batched=batched, state_draw=state_draw)


def _derive(data, clause: Clause, values: dict, shape: tuple[int, ...], batched: bool) -> None:
    """Parameters taken from the input: its channels, a divisor of them, its trailing shape."""
    order = {"channels": 0, "divisor": 1, "trailing": 2}
    for name, param in sorted(clause.derived.items(), key=lambda item: order[item[1].from_input]):
        if param.from_input == "channels":
            axis = 1 if batched else 0
            values[name] = shape[axis] if len(shape) > axis and (len(shape) >= 2 or not batched) else 1
        elif param.from_input == "divisor":
            total = int(values[param.of])
            values[name] = data.draw(st.sampled_from([d for d in range(1, total + 1) if total % d == 0]), label=name)
        else:
            longest = min(param.length[1], len(shape))
            k = data.draw(st.integers(min(param.length[0], longest), longest), label=f"{name} axes")
            trailing = tuple(shape[len(shape) - k:])
            single = param.int_when_single and k == 1 and data.draw(st.booleans(), label=f"{name} as int")
            values[name] = trailing[0] if single else trailing
