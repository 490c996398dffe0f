"""Known deviations: the files in nnconform/known/ that ship "this framework departs
from the spec here, with evidence" (docs/findings.md) for the built-in backends.

The format is checked without a run; the gate behaviour with a run against a small
faulty backend that a helper plugin (-p) registers as a built-in one with its own
known-deviations file; and the packaged torch file with a run against torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from meta_tests.adapter_sources import eval_scaling_backend
from nnconform.expectations import KNOWN_KIND, ExpectationError, load_rules, version_matches

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
IDENTITY, P_ZERO = "dropout.eval.identity", "dropout.edge.p-zero"

BACKEND = eval_scaling_backend("known-test", doc="Eval-mode dropout scales its input; version 1.5.", version="1.5")

# Loaded with -p: makes known_test:Backend the built-in backend "known-test", whose
# known-deviations file is the one the test writes.
REGISTER = '''
import os
import nnconform.known as known

known.BUILTIN["known-test"] = "known_test:Backend"
known.FILES["known-test"] = os.environ["KNOWN_TEST_FILE"]
'''

KNOWN = f"""\
# the test's known deviations
{IDENTITY}  dtype=float32 match=output\\sdiffers\\sfrom\\sthe\\sinput  # eval scales — docs/findings.md#fake
{IDENTITY}  dtype=float64 match=no-such-text  # listed, but the failure is another — docs/findings.md#fake
{P_ZERO}:Dropout:float32  version=>=1.0  # listed, but it passes — docs/findings.md#fake
{P_ZERO}:Dropout:float64  version=<1.0  # another version: not applied — docs/findings.md#fake
"""


@pytest.fixture(scope="module")
def modules(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("known")
    (directory / "known_test.py").write_text(BACKEND)
    (directory / "register_known_test.py").write_text(REGISTER)
    (directory / "known.txt").write_text(KNOWN)
    return directory


def run_suite(modules: Path, directory: Path, *args: str):
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(modules), env.get("PYTHONPATH")]))
    env["KNOWN_TEST_FILE"] = str(modules / "known.txt")
    json_path, md_path = directory / "report.json", directory / "report.md"
    command = [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "register_known_test",
               "--backend", "known-test", "--seed", "1", "--max-examples", "3",
               "--conformance-json", str(json_path), "--conformance-md", str(md_path), *args]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(json_path.read_text()) if json_path.exists() else None
    assert report is not None, result.stdout + result.stderr
    jsonschema.validate(report, SCHEMA)
    return result, report, md_path.read_text()


def by_id(report: dict) -> dict[str, dict]:
    return {item["id"]: item for item in report["items"]}


def test_known_deviation_statuses_in_summary_and_reports(modules, tmp_path):
    """The listed failure is a known deviation; another failure of a listed item, an
    unlisted item and a rule for another version fail or pass as usual; a listed item
    that passes no longer deviates, without failing the run; a user's xfails file adds."""
    xfails = tmp_path / "xfails.txt"
    xfails.write_text(f"{IDENTITY}  dtype=float16  # the user's own expected failure\n")
    result, report, markdown = run_suite(modules, tmp_path, "-k", f"({IDENTITY} or {P_ZERO}) and :Dropout:",
                                         "--xfails-file", str(xfails))
    assert result.returncode == 1, result.stdout + result.stderr
    items = by_id(report)
    found = {key: item["status"] for key, item in items.items()}
    assert found == {
        f"{IDENTITY}:Dropout:float16": "xfailed", f"{IDENTITY}:Dropout:bfloat16": "failed",
        f"{IDENTITY}:Dropout:float32": "known-deviation", f"{IDENTITY}:Dropout:float64": "failed",
        f"{P_ZERO}:Dropout:float16": "passed", f"{P_ZERO}:Dropout:bfloat16": "passed",
        f"{P_ZERO}:Dropout:float32": "no-longer-deviates", f"{P_ZERO}:Dropout:float64": "passed"}
    known = items[f"{IDENTITY}:Dropout:float32"]
    assert known["reason"] == "known deviation known.txt:2: eval scales — docs/findings.md#fake"
    assert known["message"].startswith(f"[{IDENTITY}] output differs from the input")
    other = items[f"{IDENTITY}:Dropout:float64"]
    assert "is not the known deviation known.txt:3" in other["reason"] and "'no-such-text'" in other["reason"]
    assert items[f"{P_ZERO}:Dropout:float32"]["message"].startswith(
        "no longer deviates: the known deviation known.txt:4: listed, but it passes")
    assert report["totals"]["known-deviation"] == 1 and report["totals"]["no-longer-deviates"] == 1
    assert report["run"]["known_deviations"] == str(modules / "known.txt") and report["verdict"] == "failed"

    summary = result.stdout.split("nnconform conformance summary")[1]
    assert "3 passed, 2 failed, 1 known-deviation, 1 xfailed, 1 no-longer-deviates" in summary
    assert f"KNOWN DEVIATION {IDENTITY}:Dropout:float32: known.txt:2: eval scales — docs/findings.md#fake" in summary
    assert f"NO LONGER DEVIATES {P_ZERO}:Dropout:float32: the known deviation known.txt:4" in summary

    assert "| 📌 known-deviation | 1 |" in markdown and "| ✨ no-longer-deviates | 1 |" in markdown
    assert "### Known deviations of the framework (1)" in markdown
    assert f"- 📌 `{IDENTITY}:Dropout:float32`: known deviation known.txt:2" in markdown
    assert "### No longer deviates: a known deviation did not happen (1)" in markdown
    assert f"| `{IDENTITY}` | f16🟡 bf16❌ f32📌 f64❌ |" in markdown


def test_strict_xfails_fails_a_run_whose_known_deviation_did_not_happen(modules, tmp_path):
    result, report, _ = run_suite(modules, tmp_path, "-k", f"{P_ZERO}:Dropout:float32", "--strict-xfails")
    assert result.returncode == 1, result.stdout + result.stderr
    assert by_id(report)[f"{P_ZERO}:Dropout:float32"]["status"] == "no-longer-deviates"
    assert report["passed"] is False and report["verdict"] == "failed"


def test_no_known_deviations_turns_them_off(modules, tmp_path):
    result, report, _ = run_suite(modules, tmp_path, "-k", f"{IDENTITY}:Dropout:float32 or {P_ZERO}:Dropout:float32",
                                  "--no-known-deviations")
    assert result.returncode == 1, result.stdout + result.stderr
    assert {key: item["status"] for key, item in by_id(report).items()} == {
        f"{IDENTITY}:Dropout:float32": "failed", f"{P_ZERO}:Dropout:float32": "passed"}
    assert report["run"]["known_deviations"] is None
    assert "--no-known-deviations -k" in by_id(report)[f"{IDENTITY}:Dropout:float32"]["reproduce"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed")
def test_torch_runs_with_its_packaged_known_deviations(tmp_path):
    """--backend torch applies nnconform/known/torch.txt by default: its float16
    dropout items are a known deviation or, where the run's draws did not reach the
    deviation, no longer deviating; never a plain failure or pass."""
    path = tmp_path / "report.json"
    item = "dropout.train.survivor-scale:Dropout:float16"
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    result = subprocess.run([sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "--backend", "torch",
                             "--seed", "1", "--max-examples", "3", "-k", item, f"--conformance-json={path}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(path.read_text())
    (entry,) = report["items"]
    assert entry["status"] in ("known-deviation", "no-longer-deviates"), entry
    assert entry["reason"].endswith("docs/findings.md#torch-dropout-float16-scale-overflow")
    assert report["run"]["known_deviations"].endswith(os.path.join("nnconform", "known", "torch.txt"))


# -- the format ---------------------------------------------------------------------------

@pytest.mark.parametrize("line, problem", [
    ("dropout.eval.identity  # no link", "must link the finding's entry"),
    ("dropout.eval.identity version=2.x  # r — docs/findings.md#a", "not a PEP 440 version specifier"),
    ("dropout.eval.identity match=(  # r — docs/findings.md#a", "not a regular expression"),
    ("dropout.eval.identity colour=red  # r — docs/findings.md#a", "allowed are backend, layer, dtype, version, match"),
])
def test_malformed_known_line_names_file_line_and_problem(tmp_path, line, problem):
    path = tmp_path / "known.txt"
    path.write_text(f"# header\n{line}\n")
    with pytest.raises(ExpectationError) as raised:
        load_rules(path, KNOWN_KIND)
    assert f"{path}:2: " in str(raised.value) and problem in str(raised.value)


def test_match_is_only_for_known_deviations_files(tmp_path):
    path = tmp_path / "xfails.txt"
    path.write_text("dropout.eval.identity match=x  # r\n")
    with pytest.raises(ExpectationError, match="unknown qualifier 'match', allowed are backend, layer, dtype, version"):
        load_rules(path, "xfails")


@pytest.mark.parametrize("specifier, version, expected", [
    (">=2.13", "2.13.0+cpu", True), (">=2.13", "2.14.0.dev20250101+cu128", True), (">=2.13", "2.12.1", False),
    ("==2.13.*", "2.13.1", True), (">=2.13", None, False), (">=2.13", "not a version", False),
])
def test_version_qualifier_is_a_pep440_specifier(specifier, version, expected):
    assert version_matches(specifier, version) is expected


def test_an_item_with_several_known_deviations_takes_the_one_whose_match_finds_the_failure(tmp_path):
    """Two findings may name one item (a float16 overflow and an unbatched-shape bug):
    the failure is the known deviation whose match= finds it, and a failure that none
    finds stays a failure, naming every match= it tried."""
    from types import SimpleNamespace

    from nnconform.known import judge
    path = tmp_path / "known.txt"
    path.write_text("x.clause  match=overflow  # first — docs/findings.md#a\n"
                    "x.clause  match=partly.dropped  # second — docs/findings.md#b\n")
    rules = load_rules(path, KNOWN_KIND)
    call = SimpleNamespace(when="call", excinfo=SimpleNamespace(errisinstance=lambda kinds: False))

    def judged(text):
        report = SimpleNamespace(outcome="failed", longreprtext=text, sections=[], wasxfail=None)
        judge(report, call, rules, strict=False)
        return report

    second = judged("a unit is a whole channel, but 3 of 8 channels are partly dropped")
    assert second.outcome == "skipped" and "second" in second.wasxfail
    first = judged("kept units overflow to inf")
    assert first.outcome == "skipped" and "first" in first.wasxfail
    other = judged("output differs from the float64 reference")
    assert other.outcome == "failed" and "'overflow', 'partly.dropped'" in other.sections[0][1]
