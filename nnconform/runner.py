"""Run one conformance item: draw cases with Hypothesis, run the clause's check on
the backend, and record what was decided for the reports."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from nnconform.checks import CHECKS, CheckContext, ClauseFailure
from nnconform.items import Item
from nnconform.strategies import draw_case


@dataclass
class Runner:
    backend: object
    backend_spec: str
    base_seed: int
    max_examples: int
    alpha: float
    command: str = "pytest"  # "nnconform" when run by the nnconform command
    options: tuple[str, ...] = ()  # run options that change what an item does (--spec-dir, ...)

    def reproduce_command(self, item: Item) -> str:
        options = "".join(f" {shlex.quote(option)}" for option in self.options)
        return (f"{self.command} --backend {shlex.quote(self.backend_spec)} --seed {self.base_seed} "
                f"--max-examples {self.max_examples}{options} -k {shlex.quote(item.id)}")

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
        failures = None
        try:
            conformance_example()
        except (ClauseFailure, BaseExceptionGroup) as error:
            failures = _clause_failures(error)
            if failures is None:
                evidence["reproduce"] = self.reproduce_command(item)
                error.add_note(f"reproduce with: {evidence['reproduce']}")
                raise
        except BaseException as error:
            evidence["reproduce"] = self.reproduce_command(item)
            error.add_note(f"reproduce with: {evidence['reproduce']}")
            raise
        finally:
            evidence["seconds"] = round(time.perf_counter() - started, 4)
        if failures:
            evidence["reproduce"] = self.reproduce_command(item)
            pytest.fail("\n\n".join(failures) + f"\nreproduce with: {evidence['reproduce']}", pytrace=False)


def _clause_failures(error: BaseException) -> list[str] | None:
    """The texts of the clause failures Hypothesis raised (one, or a group of distinct
    ones), each with its falsifying example; None if anything else went wrong, so
    that a harness error keeps its traceback."""
    if isinstance(error, ClauseFailure):
        return ["\n".join([str(error), *getattr(error, "__notes__", [])])]
    if isinstance(error, BaseExceptionGroup):
        texts = [_clause_failures(inner) for inner in error.exceptions]
        if all(text is not None for text in texts):
            return [line for text in texts for line in text]
    return None
