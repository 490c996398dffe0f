"""The suite tests itself: every fault in the zoo is caught, every correct
alternative passes, and every clause can fail.

The two slow tests run the conformance suite in subprocesses (two at a time) at
its default settings with the kill report's fixed seed, so they are
deterministic; `python meta_tests/kill_report.py` runs the whole zoo.
"""

from __future__ import annotations

import pytest

from meta_tests.kill_report import DEFAULT_SEED, all_clause_ids, run_members, subset_clauses, summarise
from meta_tests.zoo import ALTERNATIVES, FAULTS, KINDS, MEMBERS, Member
from nnconform.backends import load_backend
from nnconform.spec import load_specs

JOBS = 2
FAMILIES = {clause.family for clause in load_specs().clauses}


def test_zoo_has_at_least_40_faults_and_4_alternatives():
    assert len({m.target for m in FAULTS}) == len(FAULTS) >= 40
    assert len({m.target for m in ALTERNATIVES}) >= 4


@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: f"{m.target}:{m.family}")
def test_member_loads_as_a_documented_backend(member):
    backend = load_backend(member.backend)
    assert (type(backend).__doc__ or "").strip(), f"{member.target} has no docstring saying what it does"
    assert member.family in FAMILIES, f"{member.target}: {member.family!r} is no spec family ({sorted(FAMILIES)})"
    assert not member.is_fault or member.kind in KINDS, f"{member.target}: unknown kind {member.kind!r}"


def test_several_faults_of_every_kind_and_the_subset_covers_every_kind():
    for kind in KINDS:
        faults = [m for m in FAULTS if m.kind == kind]
        assert len(faults) >= 3, f"kind {kind!r} has {len(faults)} faults, expected several"
        assert any(m.subset for m in faults), f"the CI subset has no fault of kind {kind!r}"
    in_ci = {m.family for m in ALTERNATIVES if m.subset}
    assert in_ci == set(FAMILIES), f"the CI subset has no correct alternative for {sorted(set(FAMILIES) - in_ci)}"


def test_mapping_names_only_existing_clauses_and_covers_every_clause():
    clauses = set(all_clause_ids())
    mapped = {clause for m in FAULTS for clause in m.trips}
    assert not mapped - clauses, f"the zoo's mapping names clauses that no spec has: {sorted(mapped - clauses)}"
    assert not clauses - mapped, f"no zoo fault is mapped to trip {sorted(clauses - mapped)}"


def _one_fault_per_clause() -> dict[Member, list[str]]:
    """For every clause, the first fault the mapping says trips it, preferring faults
    outside the CI subset (which the other slow test runs); grouped so
    each fault runs once against all the clauses it was chosen for."""
    chosen: dict[Member, list[str]] = {}
    ordered = [m for m in FAULTS if not m.subset] + [m for m in FAULTS if m.subset]
    for clause in all_clause_ids():
        fault = next(m for m in ordered if clause in m.trips)
        chosen.setdefault(fault, []).append(clause)
    return chosen


def test_every_clause_fails_against_a_faulty_implementation():
    """The core issue's promise: each clause is shown failing against a small
    deliberately faulty backend, by running that backend against that clause."""
    chosen = _one_fault_per_clause()
    results = run_members(list(chosen), DEFAULT_SEED, JOBS, clauses_of=lambda m: chosen[m])
    problems = []
    for member, result in zip(chosen, results):
        if result.error:
            problems.append(f"{member.target}: {result.error}")
        for clause in chosen[member]:
            if clause not in result.caught_by:
                problems.append(f"{clause} did not fail against {member.target} ({result.counts})")
    assert not problems, "\n".join(problems)


def test_subset_kills_every_fault_and_passes_every_alternative():
    members = [m for m in MEMBERS if m.subset]
    report = summarise(run_members(members, DEFAULT_SEED, JOBS, subset_clauses), DEFAULT_SEED, True, 0.0)
    assert not report["errors"], report["errors"]
    assert not report["survivors"], f"faults that no clause caught: {report['survivors']}"
    assert not report["false_alarms"], f"correct alternatives that failed: {report['false_alarms']}"
    assert not report["missed_expectations"], f"faults not caught by their mapped clauses: {report['missed_expectations']}"
