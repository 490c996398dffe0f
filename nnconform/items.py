"""Conformance items: one per (clause, layer, dtype), and the statistical budget split
over them.

The split is made over the full spec set, not over what a backend supports or a
-k expression selects, so each decision's alpha is the same in every run and the
suite-wide bound holds for the full default run and for every part of it.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass

from nnconform.spec import Clause, Domain, SpecSet
from nnconform.vocabulary import CHECK_KINDS


@dataclass(frozen=True)
class Item:
    clause: Clause
    layer: str
    dtype: str

    @property
    def id(self) -> str:
        """The pytest parameter id: clause id, layer and dtype, separated by colons."""
        return f"{self.clause.id}:{self.layer}:{self.dtype}"

    def examples(self, max_examples: int) -> int:
        return max(1, math.ceil(max_examples * self.clause.examples))

    def seed(self, base_seed: int) -> int:
        """This item's Hypothesis seed: stable per item, varied by the run's base seed."""
        return zlib.crc32(self.id.encode()) ^ base_seed

    @property
    def needs_autograd(self) -> bool:
        return CHECK_KINDS[self.clause.check].needs_autograd


def pinned_clauses(clause: Clause) -> list[Clause]:
    """The clause pinned to each value one of its domains always includes: these run on
    every run, so the values where implementations break give the same verdict each time."""
    pinned = []
    for name, domain in clause.params.items():
        for value in domain.include:
            params = {**clause.params, name: Domain(name, domain.kind, choices=(value,))}
            pinned.append(dataclasses.replace(clause, params=params))
    return pinned


def unsupported_reason(item: Item, capabilities, strict_conventions: bool = False) -> str | None:
    """Why a backend with these capabilities cannot run the item, or None: its layer,
    dtype or autograd; parameter values it declared unsupported that are all the clause
    uses; or a declared convention under which the clause does not apply."""
    reason = capabilities.unsupported_reason(item.layer, item.dtype, item.needs_autograd)
    if reason:
        return reason
    from nnconform.strategies import unsupported_values
    reason = unsupported_values(item.clause, capabilities.supports_value, item.layer)
    if reason:
        return reason
    declared = {} if strict_conventions else capabilities.conventions
    for name, variant in item.clause.options.get("applies_under", {}).items():
        default = item.clause.model.conventions[name].default
        if declared.get(name, default) != variant:
            return f"the clause applies under {name}={variant}; the backend declares {name}={declared.get(name)}"
    return None


def all_items(specs: SpecSet) -> list[Item]:
    return [Item(clause, layer, dtype)
            for clause in specs.clauses for layer in clause.layers for dtype in clause.input.dtypes]


def statistical_decisions(specs: SpecSet, max_examples: int) -> int:
    """How many statistical decisions a full run makes: one per example of each
    statistical item."""
    return sum(item.examples(max_examples) + len(pinned_clauses(item.clause))
               for item in all_items(specs) if item.clause.statistical)


def decision_alpha(specs: SpecSet, max_examples: int) -> float:
    """Bonferroni: the suite's false-alarm budget split evenly over every decision."""
    return specs.false_alarm_budget / max(1, statistical_decisions(specs, max_examples))
