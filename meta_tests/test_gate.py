"""Meta tests for the CI gate: xfails and skips files, the JSON and Markdown reports,
xdist merging, time limits, crashes and one-line errors for bad arguments.

Each run is a subprocess of ``python -m pytest tests/test_conformance.py`` from the
repository root, on a few items, with small deliberately faulty backends written
to a temporary directory. Every run has a fixed --seed, so outcomes are
deterministic.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema  # the "test" extra: pip install -e '.[test]'
import pytest

from meta_tests.adapter_sources import EVAL_FAULT
from nnconform.expectations import ExpectationError, load_rules, unmatched
from nnconform.items import all_items
from nnconform.spec import load_specs

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
USAGE_ERROR = 4

FAULTY_BACKENDS = '''
import os
import time

from nnconform import Capabilities
from nnconform.backends.reference_backend import ReferenceBackend

''' + EVAL_FAULT + '''

class _Declared(ReferenceBackend):
    """Keeps the capabilities its class declares (the reference's use_specs would
    replace them with its own)."""

    def use_specs(self, specs):
        super().use_specs(specs)
        self.capabilities = type(self).capabilities


class _Faulty(_Declared):
    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        return _EvalFault(built, self.fault) if layer == "Dropout" else built


class EvalScales(_Faulty):
    """Eval-mode dropout is not the identity. Declares no bfloat16."""
    name = "eval-scales"
    capabilities = Capabilities(layers=ReferenceBackend.capabilities.layers,
                                dtypes=frozenset({"float16", "float32", "float64"}), autograd=True)

    @staticmethod
    def fault(out):
        return (out * 2 + 1).astype(out.dtype)


class EvalHangs(_Faulty):
    name = "eval-hangs"

    @staticmethod
    def fault(out):
        time.sleep(600)
        return out


class EvalAborts(_Faulty):
    name = "eval-aborts"

    @staticmethod
    def fault(out):
        os.abort()


class NoLayers(_Declared):
    """Declares no layer: every item is unsupported."""
    name = "no-layers"
    capabilities = Capabilities(layers=frozenset())


class Unavailable(ReferenceBackend):
    """Cannot run on this machine, as torch-cuda without a GPU."""
    name = "unavailable"
    unavailable = "no such device on this machine"
'''

IDENTITY = "dropout.eval.identity"
P_ZERO = "dropout.edge.p-zero"
SELECTION = f"({IDENTITY} or {P_ZERO}) and :Dropout:"  # not alpha-dropout.eval.identity, ...


@pytest.fixture(scope="module")
def backends(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("backends")
    (directory / "gate_backends.py").write_text(FAULTY_BACKENDS)
    return directory


def run_suite(*args: str, backends: Path | None = None, env: dict | None = None, timeout: float = 120):
    environment = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    if backends is not None:
        environment["PYTHONPATH"] = os.pathsep.join([str(backends), environment.get("PYTHONPATH", "")])
    environment.update(env or {})
    command = [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:randomly",
               "--seed", "1", "--max-examples", "3", *args]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def one_line_error(result) -> str:
    """The run stopped before any test with exactly one error line."""
    assert result.returncode == USAGE_ERROR, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr and "passed" not in result.stdout
    return errors[0]


def statuses(report: dict) -> dict[str, str]:
    return {item["id"]: item["status"] for item in report["items"]}


# -- parsing and matching, without a run -------------------------------------------------

@pytest.fixture(scope="module")
def items():
    return all_items(load_specs())


def test_rules_match_clause_ids_item_ids_globs_and_qualifiers(tmp_path, items):
    path = write(tmp_path / "xfails.txt", f"""\
        # a comment line, then a blank one

        {IDENTITY}  # every layer and dtype
        dropout.train.*  dtype=float16  # glob id with a dtype qualifier
        {P_ZERO}:Dropout:float64  # one item, by its full id
        batchnorm.*  layer=BatchNorm3d backend=torch  # another backend's rule
        """)
    rules = load_rules(path, "xfails")
    assert [(rule.line, rule.pattern) for rule in rules] == [
        (3, IDENTITY), (4, "dropout.train.*"), (5, f"{P_ZERO}:Dropout:float64"), (6, "batchnorm.*")]
    identity, train, single, other = rules
    assert identity.reason == "every layer and dtype"
    assert identity.matches(f"{IDENTITY}:Dropout:float16", IDENTITY, "Dropout", "float16")
    assert train.matches("dropout.train.drop-rate:Dropout:float16", "dropout.train.drop-rate", "Dropout", "float16")
    assert not train.matches("dropout.train.drop-rate:Dropout:float32", "dropout.train.drop-rate", "Dropout", "float32")
    assert single.matches(f"{P_ZERO}:Dropout:float64", P_ZERO, "Dropout", "float64")
    assert not single.matches(f"{P_ZERO}:Dropout:float32", P_ZERO, "Dropout", "float32")
    assert other.applies_to_backend(("torch", "torch")) and not other.applies_to_backend(("reference", "reference"))
    assert unmatched(rules, items, ("reference", "reference")) == []


def test_a_rule_that_matches_nothing_is_reported_with_its_line(tmp_path, items):
    rules = load_rules(write(tmp_path / "skips.txt", f"""\
        {IDENTITY}  # fine
        dropout.eval.identiy  # a typo
        {IDENTITY}  layer=BatchNorm2d  # a layer the clause does not cover
        """), "skips")
    assert [rule.line for rule in unmatched(rules, items, ("reference", "reference"))] == [2, 3]


@pytest.mark.parametrize("line, problem", [
    (f"{IDENTITY}", "missing reason"),
    (f"{IDENTITY}  #   ", "missing reason"),
    (f"{IDENTITY} colour=red  # r", "unknown qualifier 'colour'"),
    (f"{IDENTITY} Dropout  # r", "unexpected 'Dropout'"),
    (f"{IDENTITY} dtype=  # r", "empty value for dtype="),
    (f"{IDENTITY} dtype=float16 dtype=float32  # r", "dtype= given twice"),
    (f"{IDENTITY}:Dropout  # r", "clause-id:layer:dtype"),
    ("layer=Dropout  # r", "must start with a clause id"),
])
def test_malformed_line_names_file_line_and_expected_form(tmp_path, line, problem):
    path = write(tmp_path / "xfails.txt", f"# header\n{line}\n")
    with pytest.raises(ExpectationError) as raised:
        load_rules(path, "xfails")
    message = str(raised.value)
    assert f"{path}:2" in message and problem in message and "expected a line of the form" in message
    assert "\n" not in message


# -- a run with failures, expected failures, skips and unsupported items ---------------

GATED_STATUSES = {
    f"{IDENTITY}:Dropout:float16": "xfailed",
    f"{IDENTITY}:Dropout:bfloat16": "unsupported",
    f"{IDENTITY}:Dropout:float32": "failed",
    f"{IDENTITY}:Dropout:float64": "failed",
    f"{P_ZERO}:Dropout:float16": "passed",
    f"{P_ZERO}:Dropout:bfloat16": "unsupported",
    f"{P_ZERO}:Dropout:float32": "now-passing",
    f"{P_ZERO}:Dropout:float64": "skipped",
}


def gated_run(directory: Path, backends: Path, *args: str):
    """eval-scales fails dropout.eval.identity; the xfails file accepts it for float16
    only, expects a failure of a passing item, and has a line that matches nothing."""
    xfails = write(directory / "xfails.txt", f"""\
        {IDENTITY}  dtype=float16 backend=eval-scales  # known: eval mode scales
        {P_ZERO}:Dropout:float32  # listed, but it passes
        dropout.no-such-clause  # a typo
        {IDENTITY}  backend=torch  # for another backend: not applied, not warned about
        """)
    skips = write(directory / "skips.txt", f"{P_ZERO}  dtype=float64  # too slow here\n")
    result = run_suite("--backend", "gate_backends:EvalScales", "-k", SELECTION,
                       "--xfails-file", str(xfails), "--skips-file", str(skips),
                       "--conformance-json", str(directory / "out" / "report.json"),
                       "--conformance-md", str(directory / "out" / "report.md"), *args, backends=backends)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((directory / "out" / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    return result, report


def test_gated_run_statuses_summary_reports_and_junit(backends, tmp_path):
    """One run, checked from every side: statuses, terminal summary and warning, JSON
    evidence against the schema, Markdown layout and JUnit names."""
    result, report = gated_run(tmp_path, backends, "--junitxml", str(tmp_path / "junit.xml"))
    assert statuses(report) == GATED_STATUSES
    assert report["totals"]["failed"] == 2 and report["totals"]["now-passing"] == 1
    assert report["run"]["complete"] is True and report["passed"] is False

    summary = result.stdout.split("nnconform conformance summary")[1]
    assert "1 passed, 2 failed, 1 xfailed, 1 now-passing, 1 skipped, 2 unsupported" in summary
    assert f"FAILED {IDENTITY}:Dropout:float32: [{IDENTITY}]" in summary
    assert f"NOW PASSING {P_ZERO}:Dropout:float32: remove it from the xfails file" in summary
    warnings = [line for line in result.stdout.splitlines() if "UnmatchedExpectationWarning:" in line]
    assert len(warnings) == 1 and f"{tmp_path / 'xfails.txt'}:3: 'dropout.no-such-clause'" in warnings[0]

    assert report["backend"]["name"] == "eval-scales" and report["backend"]["spec"] == "gate_backends:EvalScales"
    assert report["run"]["seed"] == 1 and report["run"]["max_examples"] == 3 and report["run"]["workers"] is None
    assert report["dtypes"]["by_layer"] == {"Dropout": ["float16", "bfloat16", "float32", "float64"]}
    by_id = {item["id"]: item for item in report["items"]}
    failed = by_id[f"{IDENTITY}:Dropout:float32"]
    assert failed["message"].startswith(f"[{IDENTITY}] output differs from the input")
    assert failed["reproduce"] == f"pytest --backend gate_backends:EvalScales --seed 1 --max-examples 3 -k {IDENTITY}:Dropout:float32"
    assert f"reproduce with: {failed['reproduce']}" in result.stdout
    assert failed["examples"] >= 1 and failed["seconds"] >= 0
    assert by_id[f"{P_ZERO}:Dropout:float64"]["reason"] == f"skips file {tmp_path / 'skips.txt'}:1: too slow here"
    assert by_id[f"{IDENTITY}:Dropout:bfloat16"]["reason"].startswith("not supported by backend")
    clause = next(clause for clause in report["clauses"] if clause["id"] == IDENTITY)
    assert clause["status"] == "failed" and clause["items"]["Dropout:float16"] == "xfailed"

    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.startswith("## nnconform conformance: ❌ failed")
    assert "| ❌ failed | 2 |" in markdown and "| **total** | **8** |" in markdown
    assert markdown.index("### Failures (2)") < markdown.index("### Clauses by layer")
    assert f"- ❌ **failed** `{IDENTITY}:Dropout:float32`: [{IDENTITY}]" in markdown
    assert f"| `{IDENTITY}` | f16🟡 bf16🚫 f32❌ f64❌ |" in markdown
    assert f"| `{P_ZERO}` | f16✅ bf16🚫 f32🎉 f64⏭ |" in markdown
    assert f"- 🎉 `{P_ZERO}:Dropout:float32`" in markdown

    assert f'name="test_conformance[{IDENTITY}:Dropout:float32]"' in (tmp_path / "junit.xml").read_text()


def test_k_selects_one_item_and_statistical_items_report_alpha_n_and_statistic(tmp_path):
    path = tmp_path / "report.json"
    result = run_suite("--backend", "reference", "-k", "dropout.train.drop-rate:Dropout:float32",
                       "--conformance-json", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(path.read_text())
    jsonschema.validate(report, SCHEMA)
    (item,) = report["items"]
    assert item["id"] == "dropout.train.drop-rate:Dropout:float32" and item["status"] == "passed"
    assert item["statistical"] and len(item["statistics"]) == item["examples"] >= 1
    evidence = item["statistics"][0]
    assert 0 < evidence["alpha"] <= report["suite"]["false_alarm_budget"] and evidence["n"] > 0
    assert {"test", "statistic", "p_value", "expected", "observed"} <= set(evidence)


def test_strict_xfails_turns_now_passing_into_a_failed_run(tmp_path):
    xfails = write(tmp_path / "xfails.txt", f"{P_ZERO}:Dropout:float32  # listed, but it passes\n")
    path = tmp_path / "report.json"
    strict = run_suite("--backend", "reference", "-k", f"{P_ZERO}:Dropout:float32", "--xfails-file", str(xfails),
                       "--conformance-json", str(path), "--strict-xfails")
    assert strict.returncode == 1, strict.stdout
    report = json.loads(path.read_text())
    assert statuses(report) == {f"{P_ZERO}:Dropout:float32": "now-passing"} and report["passed"] is False
    assert f"NOW PASSING {P_ZERO}:Dropout:float32" in strict.stdout


def test_skips_never_run_and_a_now_passing_xfail_keeps_exit_status_0(backends, tmp_path):
    """eval-aborts kills the process in eval mode: only a real skip survives it."""
    skips = write(tmp_path / "skips.txt", f"{IDENTITY}  # would abort\n")
    xfails = write(tmp_path / "xfails.txt", f"{P_ZERO}:Dropout:float32  # listed, but it passes\n")
    path = tmp_path / "report.json"
    result = run_suite("--backend", "gate_backends:EvalAborts", "-k", SELECTION, "--skips-file", str(skips),
                       "--xfails-file", str(xfails), "--conformance-json", str(path), backends=backends)
    assert result.returncode == 0, result.stdout + result.stderr
    found = statuses(json.loads(path.read_text()))
    assert [found[f"{IDENTITY}:Dropout:{dtype}"] for dtype in ("float16", "bfloat16", "float32", "float64")] == [
        "skipped"] * 4
    assert found[f"{P_ZERO}:Dropout:float32"] == "now-passing" and found[f"{P_ZERO}:Dropout:float64"] == "passed"


# -- xdist, time limits and crashes -------------------------------------------------------

def test_xdist_workers_merge_into_one_report(backends, tmp_path):
    result, report = gated_run(tmp_path, backends, "-n", "2")
    assert report["run"]["workers"] == 2 and statuses(report) == GATED_STATUSES
    assert "1 passed, 2 failed, 1 xfailed, 1 now-passing, 1 skipped, 2 unsupported" in result.stdout
    assert f"| `{IDENTITY}` | f16🟡 bf16🚫 f32❌ f64❌ |" in (tmp_path / "out" / "report.md").read_text()


def test_a_hanging_item_times_out_and_its_layer_is_not_waited_on_again(backends, tmp_path):
    """eval-mode dropout hangs: the first eval item times out with a message saying the
    backend hung in forward; the layer's later items are not run (they fail at once,
    naming the item that hung); the run finishes with its report."""
    path = tmp_path / "report.json"
    result = run_suite("--backend", "gate_backends:EvalHangs", "-k", f"{IDENTITY}:Dropout:float32 or {P_ZERO}:Dropout:",
                       "--clause-timeout", "3", "--conformance-json", str(path), backends=backends)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(path.read_text())
    jsonschema.validate(report, SCHEMA)
    found = {item["id"]: item for item in report["items"]}
    hung = found.pop(f"{IDENTITY}:Dropout:float32")
    assert hung["status"] == "timed-out" and hung["message"].startswith(
        f"[{IDENTITY}] timed out after 3 s (--clause-timeout): the backend hung: its forward call had not "
        "returned after"), hung["message"]
    assert re.search(r"\(\d+ earlier backend calls in this item completed, [\d.e-]+ s each on average\)",
                     hung["message"]), hung["message"]
    assert len(found) == 4 and {item["status"] for item in found.values()} == {"timed-out"}
    for item in found.values():
        assert item["message"].startswith(f"[{P_ZERO}] not run: the backend hung on layer Dropout earlier in "
                                          f"this run ({IDENTITY}:Dropout:float32: its forward call did not "
                                          "return within 3 s)"), item["message"]
        assert "check this one alone with: pytest --backend gate_backends:EvalHangs" in item["message"]
    assert f"TIMED-OUT {IDENTITY}:Dropout:float32" in result.stdout


def test_a_crashed_worker_is_reported_and_the_reports_are_written(backends, tmp_path):
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    result = run_suite("-n", "2", "--backend", "gate_backends:EvalAborts", "-k", f"{IDENTITY}:Dropout:float32 or {P_ZERO}:Dropout:",
                       "--conformance-json", str(json_path), "--conformance-md", str(md_path), backends=backends)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(json_path.read_text())
    jsonschema.validate(report, SCHEMA)
    found = statuses(report)
    assert found.pop(f"{IDENTITY}:Dropout:float32") == "crashed"
    assert set(found.values()) == {"passed"} and len(found) == 4 and report["run"]["complete"]
    assert f"💥 **crashed** `{IDENTITY}:Dropout:float32`" in md_path.read_text()


def test_without_xdist_a_hard_crash_leaves_a_partial_report(backends, tmp_path):
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    result = run_suite("--backend", "gate_backends:EvalAborts", "-k", f"{P_ZERO}:Dropout:float32 or {IDENTITY}:Dropout:",
                       "--conformance-json", str(json_path), "--conformance-md", str(md_path), backends=backends)
    assert result.returncode not in (0, 1), result.stdout
    report = json.loads(json_path.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["run"]["complete"] is False and report["run"]["exit_status"] is None
    found = statuses(report)
    running = [key for key, status in found.items() if status == "running"]
    assert running == [f"{IDENTITY}:Dropout:float16"]
    assert found[f"{P_ZERO}:Dropout:float32"] in ("passed", "not-run") and "not-run" in found.values()
    assert f"Running when it ended: `{IDENTITY}:Dropout:float16`" in md_path.read_text()


# -- nothing checked is not a pass ---------------------------------------------------------

@pytest.mark.parametrize("backend, status, reason", [
    ("NoLayers", "unsupported", "not supported by backend: layer Dropout is not in the backend's declared layers []"),
    ("Unavailable", "skipped", "backend 'gate_backends:Unavailable' unavailable: no such device on this machine"),
])
def test_a_run_that_checks_nothing_fails_unless_allowed(backends, tmp_path, backend, status, reason):
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    args = ("--backend", f"gate_backends:{backend}", "-k", SELECTION, "--conformance-json", str(json_path),
            "--conformance-md", str(md_path))
    result = run_suite(*args, backends=backends)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "NOTHING WAS CHECKED" in line]
    assert lines == [f"nnconform: NOTHING WAS CHECKED: not one of the 8 conformance items ran its check "
                     f"(8 {status}; {reason}): the run fails; pass --allow-nothing-checked where that is expected"]
    report = json.loads(json_path.read_text())
    jsonschema.validate(report, SCHEMA)
    assert (report["verdict"], report["checked"], report["nothing_checked"], report["passed"]) == (
        "nothing-checked", 0, True, False)
    assert report["run"]["exit_status"] == 1 and report["run"]["complete"] is True
    markdown = md_path.read_text()
    assert markdown.startswith("## nnconform conformance: ⚠️ nothing checked")
    assert "> **Nothing was checked**: not one of the 8 items ran its check" in markdown

    allowed = run_suite(*args, "--allow-nothing-checked", backends=backends)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "accepted by --allow-nothing-checked" in allowed.stdout
    report = json.loads(json_path.read_text())
    assert (report["verdict"], report["passed"], report["run"]["allow_nothing_checked"]) == (
        "nothing-checked", True, True)


def test_a_k_selection_of_nothing_keeps_pytests_own_exit_status_5():
    result = run_suite("--backend", "reference", "-k", "no-such-clause")
    assert result.returncode == 5 and "NOTHING WAS CHECKED" not in result.stdout, result.stdout


def test_one_checked_item_is_enough(backends):
    result = run_suite("--backend", "gate_backends:EvalScales", "-k", f"{P_ZERO}:Dropout: and (float32 or bfloat16)",
                       backends=backends)
    assert result.returncode == 0 and "1 passed, 1 unsupported" in result.stdout, result.stdout


# -- profiles ------------------------------------------------------------------------------

def test_ci_environment_selects_the_ci_profile(tmp_path):
    path = tmp_path / "report.json"
    args = ("--backend", "reference", "-k", f"{P_ZERO}:Dropout:float32", "--conformance-json", str(path))
    in_ci = run_suite(*args, env={"CI": "true"})
    assert in_ci.returncode == 0, in_ci.stdout + in_ci.stderr
    run = json.loads(path.read_text())["run"]
    assert (run["profile"], run["profile_source"]) == ("ci", "CI environment variable")



# -- bad arguments: one line each, before any test ---------------------------------------

def test_unknown_backend_lists_the_available_ones():
    line = one_line_error(run_suite("-n", "2", "--backend", "no-such-backend"))
    assert "unknown backend 'no-such-backend'" in line and "reference, " in line and " torch, " in line


def test_unreadable_xfails_file(tmp_path):
    line = one_line_error(run_suite("--backend", "reference", "--xfails-file", str(tmp_path / "missing.txt")))
    assert f"cannot read xfails file '{tmp_path / 'missing.txt'}'" in line


def test_malformed_xfails_line_names_the_line(tmp_path):
    path = write(tmp_path / "xfails.txt", f"{IDENTITY}  # fine\n{P_ZERO} float16  # a qualifier needs name=\n")
    line = one_line_error(run_suite("--backend", "reference", "--xfails-file", str(path)))
    assert f"xfails file {path}:2: unexpected 'float16'" in line


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_examples_must_be_positive(value):
    assert "--max-examples expects a positive integer" in one_line_error(
        run_suite("--backend", "reference", "--max-examples", value))


def test_clause_timeout_must_be_a_number_of_seconds():
    assert "--clause-timeout expects a number of seconds" in one_line_error(
        run_suite("--backend", "reference", "--clause-timeout", "-1"))


def test_unwritable_report_paths(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line_error(run_suite("--backend", "reference", "--conformance-json", str(blocker / "report.json")))
    assert f"--conformance-json '{blocker / 'report.json'}' is not writable" in line
    line = one_line_error(run_suite("--backend", "reference", "--conformance-md", str(tmp_path)))
    assert f"--conformance-md '{tmp_path}' is a directory" in line
