"""Run one conformance item: draw cases with Hypothesis, run the clause's check on
the backend, and record what was decided for the reports."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from nnconform.checks import CHECKS, CheckContext
from nnconform.items import Item
from nnconform.strategies import draw_case


@dataclass
class Runner:
    backend: object
    backend_spec: str
    base_seed: int
    max_examples: int
    alpha: float

    def reproduce_command(self, item: Item) -> str:
        return (f"pytest --backend {shlex.quote(self.backend_spec)} --seed {self.base_seed} "
                f"--max-examples {self.max_examples} -k {shlex.quote(item.id)}")

    def run(self, item: Item, evidence: dict) -> None:
        """Run the item's examples; raise the minimal failure. Writes evidence for the
        report as it goes: examples run, and for statistical clauses alpha, n and
        the statistic of each decision."""
        check = CHECKS[item.clause.check]
        evidence["examples"] = 0
        alpha = self.alpha if item.clause.statistical else None

        @seed(item.seed(self.base_seed))
        @settings(max_examples=item.examples(self.max_examples))
        @given(data=st.data())
        def conformance_example(data):
            case = draw_case(data, item.clause, item.layer, item.dtype)
            context = CheckContext(item.clause, case, self.backend, alpha)
            evidence["examples"] += 1
            try:
                check(context)
            finally:
                if context.evidence:
                    evidence.setdefault("statistics", []).append(context.evidence)

        started = time.perf_counter()
        try:
            conformance_example()
        except BaseException as error:
            error.add_note(f"reproduce with: {self.reproduce_command(item)}")
            raise
        finally:
            evidence["seconds"] = round(time.perf_counter() - started, 4)
