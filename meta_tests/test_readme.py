"""README.md's clause table is generated from specs/ and must not drift from it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nnconform.spec import load_specs

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _clause_table_module():
    spec = importlib.util.spec_from_file_location("clause_table", REPO / "scripts" / "clause_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


clause_table = _clause_table_module()
FIX = "regenerate it with: python scripts/clause_table.py --write README.md"


def test_readme_table_matches_the_specs():
    region = clause_table.region(README.read_text())
    assert region is not None, f"README.md lacks one {clause_table.START} ... {clause_table.END} region; {FIX}"
    assert region == clause_table.clause_table(load_specs()), f"README.md's clause table is out of date; {FIX}"


def test_every_clause_id_appears_in_the_readme():
    region = clause_table.region(README.read_text()) or ""
    missing = [c.id for c in load_specs().clauses if f"`{c.id}`" not in region]
    assert not missing, f"clause ids missing from README.md's table: {missing}; {FIX}"


def test_every_statistical_clause_states_alpha_power_delta_and_n_in_the_table():
    specs = load_specs()
    table = clause_table.clause_table(specs)
    alpha = clause_table.decision_alpha(specs, clause_table.default_examples())
    for clause in specs.clauses:
        if clause.statistical:
            row = next(line for line in table.splitlines() if line.startswith(f"| `{clause.id}` | {alpha:.3g} |"))
            assert f"| {clause.statistics['n']} |" in row and f"| {clause.statistics['power']:g} |" in row


def test_writing_replaces_only_the_marked_region(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{clause_table.START}\nstale | table\n{clause_table.END}\nafter\n")
    assert clause_table.main(["--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{clause_table.END}\nafter\n")
    assert "stale" not in text and clause_table.region(text) == clause_table.clause_table(load_specs())
    assert clause_table.main(["--write", str(readme)]) == 0
    assert readme.read_text() == text, "a second write changed the file"


def test_writing_creates_a_missing_readme_with_just_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    clause_table.main(["--write", str(readme)])
    text = readme.read_text()
    assert text.startswith(clause_table.START) and text.rstrip().endswith(clause_table.END)


def test_writing_refuses_a_readme_without_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# A README someone wrote by hand\n")
    with pytest.raises(SystemExit):
        clause_table.main(["--write", str(readme)])
    assert readme.read_text() == "# A README someone wrote by hand\n"


def test_run_costs_table_is_the_one_its_results_file_generates():
    """README's "What a run costs" table names the benchmarks/run.py results file it came
    from; regenerating it from that file gives the same table, so it cannot drift."""
    import json
    import re
    import sys

    sys.path.insert(0, str(REPO))
    from benchmarks.results_md import README_END, README_START, readme_table

    text = (REPO / "README.md").read_text()
    table = text[text.index(README_START): text.index(README_END) + len(README_END)]
    source = re.search(r"\(\[`(benchmarks/results/[^`]+\.json)`\]", table).group(1)
    assert readme_table(json.loads((REPO / source).read_text()), source) == table
