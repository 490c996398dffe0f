"""Hypothesis strategies derived from a clause's parameter and input domains.

Every draw carries a label, so a falsifying example reads as a list of named
choices: the parameters, the shape, the value profile and the seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnconform.dtypes import dtype_eps, numpy_dtype
from nnconform.spec import Clause, Domain

# Value profiles: (location, scale, minimum spread) of the normally distributed input
# values. The offset profile puts the mean near 1e4, where float16 values are 8 apart
# and bfloat16 values 64; its spread is at least 8 of those steps, so that rounding to
# a 16-bit dtype does not collapse every value into one (a batch variance of zero
# would tell nothing). The tiny-variance profile makes the batch variance far smaller
# than eps.
VALUE_PROFILES = {"standard": (0.0, 1.0, 0), "offset": (1.0e4, 1.0, 8), "tiny-variance": (1.0, 1.0e-3, 0)}
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

    def names(self) -> dict[str, float]:
        """Values for formulas: parameters and scenario counts, None as NaN."""
        merged = {**self.params, **self.scenario}
        return {k: (math.nan if v is None else float(v)) for k, v in merged.items()}

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
        """A training batch for the warmup calls. It has one more sample than the
        observed input, so training is valid even when an eval-mode clause observes
        an input with one value per channel."""
        return self.batch(index, (self.shape[0] + 1,) + self.shape[1:] if self.shape else None)


def domain_strategy(domain: Domain) -> st.SearchStrategy:
    if domain.choices:
        base = st.sampled_from(domain.choices)
    elif domain.kind == "int":
        base = st.integers(int(domain.min), int(domain.max))
    else:
        # Subnormal parameters (below 2.2e-308) are no meaningful layer setting.
        base = st.floats(domain.min, domain.max, allow_nan=False, allow_subnormal=False)
        if domain.include:
            base = st.sampled_from(domain.include) | base
    return (st.none() | base) if domain.nullable else base


def shape_strategy(clause: Clause, layer: str) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes of every valid rank for the layer, with odd sizes, batch size 1, and
    sometimes two axes forced equal (where a wrong channel axis hides)."""
    layer_low, layer_high = clause.layer_ranks[layer]
    low, high = max(layer_low, clause.input.ranks[0]), min(layer_high, clause.input.ranks[1])
    side_low, side_high = clause.input.side
    per_channel = clause.input.per_channel

    @st.composite
    def shapes(draw):
        rank = draw(st.integers(low, high), label="rank")
        shape = list(draw(hnp.array_shapes(min_dims=rank, max_dims=rank, min_side=side_low, max_side=side_high),
                          label="sides") if rank else ())
        if rank >= 2 and draw(st.booleans(), label="two axes equal"):
            i, j = draw(st.sampled_from([(i, j) for i in range(rank) for j in range(i + 1, rank)]), label="equal axes")
            shape[j] = shape[i]
        if per_channel is not None and rank >= 2:
            if per_channel[1] == 1:
                shape = [1, shape[1]] + [1] * (rank - 2)
            count = math.prod(shape) // shape[1]
            if count < per_channel[0]:
                shape[0] = math.ceil(per_channel[0] / max(1, count // shape[0]))
        return tuple(shape)

    return shapes()


def draw_case(data, clause: Clause, layer: str, dtype: str) -> Case:
    """Draw one example from the strategy space of (clause, layer, dtype)."""
    drawn = {name: data.draw(domain_strategy(domain), label=name) for name, domain in clause.params.items()}
    values = {**clause.defaults, **drawn}
    mode = data.draw(st.sampled_from(clause.modes), label="mode")
    shape = data.draw(shape_strategy(clause, layer), label="shape")
    profile = data.draw(st.sampled_from(clause.input.values), label="values")
    value_seed = data.draw(st.integers(0, SEED_MAX), label="value seed")
    seed = data.draw(st.integers(0, SEED_MAX), label="backend seed")
    layout = data.draw(st.sampled_from(clause.input.layouts), label="layout")
    scenario = {name: values.pop(name) for name in ("calls", "warmup")}
    for name in clause.derived:  # 'channels', the only input-derived value
        values[name] = shape[1] if len(shape) >= 2 else 1
    return Case(layer, dtype, mode, values, scenario, shape, profile, value_seed, seed, layout=layout)
