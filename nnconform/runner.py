"""Run one conformance item: draw cases with Hypothesis, run the clause's check on
the backend, and record what was decided for the reports."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

import pytest
from hypothesis import Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from nnconform.checks import CHECKS, CheckContext, ClauseFailure
from nnconform.checks.context import NotExercised
from nnconform.items import Item, pinned_clauses
from nnconform.strategies import draw_case, unsupported_values


NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)


@dataclass
class Runner:
    backend: object
    backend_spec: str
    base_seed: int
    max_examples: int
    alpha: float
    strict_conventions: bool = False  # --conventions=torch: judge by the spec's defaults
    command: str = "pytest"  # "nnconform" when run by the nnconform command
    options: tuple[str, ...] = ()  # run options that change what an item does (--spec-dir, ...)
    _pinned: dict = field(default_factory=dict)

    def reproduce_command(self, item: Item) -> str:
        options = "".join(f" {shlex.quote(option)}" for option in self.options)
        return (f"{self.command} --backend {shlex.quote(self.backend_spec)} --seed {self.base_seed} "
                f"--max-examples {self.max_examples}{options} -k {shlex.quote(item.id)}")

    def pinned(self, item: Item) -> list:
        """The item's clause once per value its domains always include, pinned to it."""
        if item.id not in self._pinned:
            self._pinned[item.id] = pinned_clauses(item.clause)
        return self._pinned[item.id]

    def run(self, item: Item, evidence: dict, shrink: bool = True) -> None:
        """Run the item's examples; raise the minimal failure (the first one found when
        ``shrink`` is False: for an item expected to fail, whose failure is known).
        Writes evidence for the report as it goes: examples run, and for statistical
        clauses alpha, n and the statistic of each decision."""
        check = CHECKS[item.clause.check]
        evidence["examples"] = 0
        alpha = self.alpha if item.clause.statistical else None
        capabilities = getattr(self.backend, "capabilities", None)
        supports = getattr(capabilities, "supports_value", None)
        declared_pools = getattr(capabilities, "value_pools", None)
        pools = (self.base_seed, tuple(sorted(declared_pools.items()))) if declared_pools else None
        notes: dict = {}
        declared = {} if self.strict_conventions else getattr(capabilities, "conventions", {})
        try:
            conventions = item.clause.model.resolve(declared)
        except ValueError as error:
            pytest.fail(f"[{item.clause.id}] backend {self.backend_spec!r} declares a convention the spec does not "
                        f"allow: {error}", pytrace=False)
        judged_under = {name: conventions[name] for name in item.clause.options.get("conventions", ())
                        if conventions[name] != item.clause.model.conventions[name].default}
        if judged_under:
            evidence["conventions"] = judged_under

        def examples(clause, count: int, seed_value: int, pinned: bool = False):
            @seed(seed_value)
            @settings(max_examples=count, **({} if shrink else {"phases": NO_SHRINK}))
            @given(data=st.data())
            def conformance_example(data):
                case = draw_case(data, clause, item.layer, item.dtype, supports, pools)
                context = CheckContext(clause, case, self.backend, alpha, notes=notes, conventions=conventions,
                                       pinned=pinned)
                evidence["examples"] += 1
                try:
                    check(context)
                except NotExercised:
                    pass  # a pinned example that exercised nothing is no evidence; the drawn ones must be
                finally:
                    if context.evidence:
                        evidence.setdefault("statistics", []).append(context.evidence)
            try:
                conformance_example()
            except Unsatisfiable:
                raise ClauseFailure(f"[{item.clause.id}] never exercised: none of the examples drawn exercised the "
                                    f"clause's property ({notes.get('not exercised', 'every example was rejected')}), "
                                    f"so nothing was checked") from None

        started = time.perf_counter()
        failures = None
        try:
            # The values where implementations break (each domain's `include`) run on
            # every run, one pinned example each, before the drawn examples.
            for offset, clause in enumerate(self.pinned(item), start=1):
                if supports is None or unsupported_values(clause, supports, item.layer) is None:  # a pinned value the backend declared unsupported is skipped
                    examples(clause, 1, item.seed(self.base_seed) + offset, pinned=True)
            examples(item.clause, item.examples(self.max_examples), item.seed(self.base_seed))
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
            for key in ("limited", "looseness"):
                if key in notes:
                    evidence[key] = notes[key]
            backend_notes = _backend_notes(self.backend)
            if backend_notes:
                evidence["backend_notes"] = backend_notes
        if failures:
            evidence["reproduce"] = self.reproduce_command(item)
            pytest.fail("\n\n".join(failures) + f"\nreproduce with: {evidence['reproduce']}", pytrace=False)


def _backend_notes(backend) -> dict[str, str] | None:
    """What the backend's optional evidence() hook reports about the item just run (for
    example, that compiled code ran). A hook that fails is reported, never fatal."""
    hook = getattr(backend, "evidence", None)
    if not callable(hook):
        return None
    try:
        notes = hook()
        return {str(key): str(value) for key, value in dict(notes or {}).items()} or None
    except Exception as error:  # the item's verdict stands; the report says the hook broke
        return {"evidence() error": f"{type(error).__name__}: {error}"}


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
