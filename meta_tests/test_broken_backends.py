"""The suite stays standing when a backend misbehaves at run time.

Each test runs the conformance suite in a subprocess against one deliberately
broken backend from meta_tests/broken/ and checks three things: the run finishes,
each failure is attributed to the clause that exposed it with a message that
names what went wrong, and the JSON and Markdown reports are written. The last
test runs every clause in-process against a set of API faults (methods that raise
or exit, results of the wrong type, dtype or shape) and checks that each ends as a
clause failure, never as an error of the harness.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from meta_tests.broken.misbehaving import FAULTS
from nnconform.checks import CHECKS, CheckContext, ClauseFailure
from nnconform.items import all_items
from nnconform.spec import load_specs
from nnconform.strategies import draw_case

REPO = Path(__file__).resolve().parents[1]
RUN_LIMIT_S = 240  # far above any run here; a hang of the harness itself fails the test
SEED = "0"


@dataclass
class Run:
    returncode: int
    output: str
    report: dict | None
    markdown: str | None

    @property
    def items(self) -> dict[str, dict]:
        assert self.report is not None, f"no JSON report was written; output:\n{self.output[-3000:]}"
        return {item["id"]: item for item in self.report["items"]}

    def statuses(self) -> dict[str, str]:
        return {item_id: item["status"] for item_id, item in self.items.items()}


def run_suite(tmp_path: Path, module: str, *args: str) -> Run:
    """Run the conformance suite against meta_tests.broken.MODULE:Backend, with both reports."""
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    command = [sys.executable, "-m", "pytest", "tests/test_conformance.py",
               "--backend", f"meta_tests.broken.{module}:Backend", "-q", "-p", "no:cacheprovider",
               "--max-examples", "3", "--seed", SEED,
               "--conformance-json", str(json_path), "--conformance-md", str(md_path),
               # the broken backends wrap torch; these tests were written for its first two families,
               # and a -k substring such as dropout.train.drop-rate also matches channel-dropout's
               *(() if "-m" in args else ("-m", "dropout or batchnorm")), *args]
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    return Run(done.returncode, done.stdout + done.stderr,
               json.loads(json_path.read_text()) if json_path.exists() else None,
               md_path.read_text() if md_path.exists() else None)


def assert_no_harness_error(run: Run) -> None:
    assert "INTERNALERROR" not in run.output, run.output[-3000:]
    assert run.markdown is not None, "no Markdown report was written"


def test_raising_backend_fails_only_the_clauses_it_breaks(tmp_path):
    """forward raises RuntimeError for BatchNorm3d: those items fail with the backend's
    exception type and message, and the other layers' items still run and pass."""
    run = run_suite(tmp_path, "raising", "-k", "(batchnorm.train.output and float32) or single-value-error")
    assert_no_harness_error(run)
    assert run.returncode == 1
    statuses = run.statuses()
    assert statuses == {f"{clause}:{layer}:float32": "failed" if layer == "BatchNorm3d" else "passed"
                        for clause in ("batchnorm.train.output", "batchnorm.train.single-value-error")
                        for layer in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")}
    raised = "backend 'raising' raised RuntimeError in forward: 3-d kernels are not implemented yet"
    output_item = run.items["batchnorm.train.output:BatchNorm3d:float32"]
    assert output_item["message"].startswith("[batchnorm.train.output] " + raised)
    error_item = run.items["batchnorm.train.single-value-error:BatchNorm3d:float32"]
    assert "expected ValueError in forward" in error_item["message"] and raised in error_item["message"]
    assert raised in run.output


def test_non_finite_outputs_fail_with_count_and_positions(tmp_path):
    """NaN where dropout should write 0, inf in batch norm's last channel: every check
    that compares values reports the non-finite units by count and position, the
    statistical ones included (a NaN is neither dropped nor kept)."""
    clauses = ("dropout.train.drop-rate", "dropout.train.call-independence", "dropout.train.mean-preservation",
               "dropout.train.mask-values", "dropout.train.survivor-scale", "dropout.edge.p-one",
               "batchnorm.train.output", "batchnorm.eval.output")
    selected = [f"{clause}:Dropout:" if clause.startswith("dropout.") else clause for clause in clauses]
    run = run_suite(tmp_path, "nonfinite", "-k",
                    f"float32 and ({' or '.join(selected)} or dropout.eval.identity:Dropout:)")
    assert_no_harness_error(run)
    assert run.returncode == 1
    items = run.items
    assert {items[i]["clause"] for i in items} == set(clauses) | {"dropout.eval.identity"}
    for item_id, item in items.items():
        if item["clause"] == "dropout.eval.identity":
            assert item["status"] == "passed", item  # eval mode has no zeros to replace
            continue
        assert item["status"] == "failed", item
        message = item["message"]
        assert "has non-finite values (NaN or inf) where finite ones are expected" in message, (item_id, message)
        assert re.search(r"\d+ of \d+ units, at \(", message), message
        assert len(message) < 400, f"{item_id}: a wall of numbers: {message}"


def test_wrong_dtype_shape_and_type_say_expected_and_got(tmp_path):
    """Dropout returns float32 for every dtype (the shape-dtype clause catches it);
    BatchNorm1d a flattened array, BatchNorm2d a list and BatchNorm3d a torch tensor."""
    run = run_suite(tmp_path, "wrong_output", "-k",
                    "(dropout.output.shape-dtype:Dropout: and (float16 or float32)) or "
                    "(batchnorm.train.output and float16)")
    assert_no_harness_error(run)
    assert run.returncode == 1
    items = run.items
    assert items["dropout.output.shape-dtype:Dropout:float32"]["status"] == "passed"
    expected = {
        "dropout.output.shape-dtype:Dropout:float16": "output dtype float32, expected the input's dtype float16",
        "batchnorm.train.output:BatchNorm1d:float16": "backend 'wrong-output': forward returned an array of shape (",
        "batchnorm.train.output:BatchNorm2d:float16": "backend 'wrong-output': forward returned builtins.list, "
                                                      "expected numpy.ndarray of shape (",
    }
    if importlib.util.find_spec("torch") is not None:
        expected["batchnorm.train.output:BatchNorm3d:float16"] = ("backend 'wrong-output': forward returned "
                                                                  "torch.Tensor, expected numpy.ndarray")
    for item_id, text in expected.items():
        assert items[item_id]["status"] == "failed", items[item_id]
        assert text in items[item_id]["message"], items[item_id]["message"]
    assert "expected the input's shape" in items["batchnorm.train.output:BatchNorm1d:float16"]["message"]


def test_hanging_backend_times_out_and_the_run_goes_on(tmp_path):
    """forward sleeps for 10 minutes on BatchNorm2d: with --clause-timeout 5 that item
    fails as timed out after 5 s, the other layers pass, and the reports are written."""
    run = run_suite(tmp_path, "hanging", "-k", "batchnorm.train.output and float32", "--clause-timeout", "5")
    assert_no_harness_error(run)
    assert run.returncode == 1
    assert run.statuses() == {"batchnorm.train.output:BatchNorm1d:float32": "passed",
                              "batchnorm.train.output:BatchNorm2d:float32": "timed-out",
                              "batchnorm.train.output:BatchNorm3d:float32": "passed"}
    hung = run.items["batchnorm.train.output:BatchNorm2d:float32"]
    assert hung["message"].startswith("[batchnorm.train.output] timed out after 5 s"), hung["message"]
    assert run.report["run"]["clause_timeout"] == 5
    assert "batchnorm.train.output:BatchNorm2d:float32" in run.markdown and "timed-out" in run.markdown


def test_process_killed_under_xdist_is_reported_as_crashed(tmp_path):
    """os.abort() in forward for BatchNorm2d under -n 2: xdist replaces the dead
    worker, the run completes, and both reports record the crash against that item."""
    run = run_suite(tmp_path, "aborting", "-n", "2", "-k", "batchnorm.train.output and float32")
    assert run.returncode == 1
    assert run.statuses() == {"batchnorm.train.output:BatchNorm1d:float32": "passed",
                              "batchnorm.train.output:BatchNorm2d:float32": "crashed",
                              "batchnorm.train.output:BatchNorm3d:float32": "passed"}
    assert run.report["run"]["complete"] is True
    crashed = run.items["batchnorm.train.output:BatchNorm2d:float32"]
    assert crashed["clause"] == "batchnorm.train.output"
    assert "crashed" in crashed["message"]
    assert run.markdown is not None
    assert re.search(r"crashed\*\* `batchnorm\.train\.output:BatchNorm2d:float32`", run.markdown), run.markdown


def test_process_killed_without_xdist_leaves_a_partial_report(tmp_path):
    """Without xdist nothing survives the abort but what was written before it: the
    process dies of SIGABRT, and the partial reports hold the item that finished, the
    one running when it died and the one never started."""
    run = run_suite(tmp_path, "aborting", "-k", "batchnorm.train.output and float32")
    assert run.returncode in (-6, 134), run.output[-2000:]  # killed by SIGABRT
    assert run.statuses() == {"batchnorm.train.output:BatchNorm1d:float32": "passed",
                              "batchnorm.train.output:BatchNorm2d:float32": "running",
                              "batchnorm.train.output:BatchNorm3d:float32": "not-run"}
    assert run.report["run"]["complete"] is False
    assert run.markdown is not None and "did not finish" in run.markdown
    assert "batchnorm.train.output:BatchNorm2d:float32" in run.markdown


def test_input_mutation_is_caught_by_the_inplace_clause(tmp_path):
    """Dropout writes into its input with inplace=False: dropout.inplace fails, and the
    clauses that hand the layer a copy of their input are not disturbed."""
    run = run_suite(tmp_path, "mutating", "-k", "float32 and :Dropout: and (dropout.inplace or dropout.eval.identity "
                    "or dropout.train.mask-values)", "--max-examples", "10")
    assert_no_harness_error(run)
    assert run.returncode == 1
    items = run.items
    assert items["dropout.inplace:Dropout:float32"]["status"] == "failed"
    assert "inplace=False but the input was modified" in items["dropout.inplace:Dropout:float32"]["message"]
    assert items["dropout.eval.identity:Dropout:float32"]["status"] == "passed"
    assert items["dropout.train.mask-values:Dropout:float32"]["status"] == "passed"


def test_frozen_random_stream_is_caught_by_call_independence(tmp_path):
    """A dropout mask drawn once and reused on every call has the right rate, so
    drop-rate passes; the clause comparing two calls fails."""
    run = run_suite(tmp_path, "frozen_mask", "-k",
                    "float32 and :Dropout: and (dropout.train.call-independence or dropout.train.drop-rate)")
    assert_no_harness_error(run)
    items = run.items
    frozen = items["dropout.train.call-independence:Dropout:float32"]
    assert frozen["status"] == "failed" and "agreement across calls" in frozen["message"], frozen
    assert items["dropout.train.drop-rate:Dropout:float32"]["status"] == "passed"


def test_hidden_eval_statistics_are_caught_by_the_eval_output(tmp_path):
    """Batch norm that keeps a hidden running mean in eval mode and normalises with it:
    the exposed buffers stay frozen (frozen-stats passes), the eval output does not
    match the reference computed from them (eval.output fails), for every layer."""
    run = run_suite(tmp_path, "hidden_stats", "-k", "float64 and (batchnorm.eval.output or batchnorm.eval.frozen-stats)")
    assert_no_harness_error(run)
    assert run.returncode == 1
    for item_id, item in run.items.items():
        if item["clause"] == "batchnorm.eval.frozen-stats":
            assert item["status"] == "passed", item
        else:
            assert item["status"] == "failed", item
            assert "output after eval call 1 differs from the float64 reference" in item["message"], item


# In-process: every clause against every API fault.

SPECS = load_specs(None)


def first_item_of_each_clause() -> list:
    first = {}
    for item in all_items(SPECS):
        first.setdefault(item.clause.id, item)
    return list(first.values())


EXPECTED_TEXT = {
    "seed-raises": "raised RuntimeError in seed: seed is broken",
    "build-returns-none": "build('{layer}') returned NoneType, which lacks",
    "train-raises": "raised RuntimeError in train: train is broken",
    "eval-raises": "raised RuntimeError in eval: eval is broken",
    "state-raises": "raised RuntimeError in state: state is broken",
    "forward-exits": "raised SystemExit in forward: 3",
    "forward-returns-object": "forward returned builtins.object, expected numpy.ndarray",
    "forward-returns-scalar": "forward returned numpy.float32, expected numpy.ndarray",
    "forward-returns-strings": "forward returned an array of dtype <U3, expected real numbers",
    "forward-returns-objects": "forward returned an array of dtype object, expected real numbers",
    "forward-returns-complex": "forward returned an array of dtype complex128, expected real numbers",
    "state-returns-list": "state() returned list, expected dict",
    "state-returns-strings": "state()['running_mean'] is str 'zeros', expected a numeric array",
    "state-wrong-shape": "state()['running_mean'] is an array of shape (",
    "state-scalar": "state()['running_mean'] is an array of shape (), expected shape (",
    "state-count-not-int": "state()['num_batches_tracked'] is str 'many', expected an int",
    "trainable-not-a-set": "the layer's trainable is int 3, expected a set of state names",
}


def run_one_example(item, backend) -> None:
    """One drawn example of the item's clause against the backend, without shrinking."""
    @settings(max_examples=1, phases=[Phase.generate], database=None, derandomize=True, deadline=None)
    @given(data=st.data())
    def example(data):
        case = draw_case(data, item.clause, item.layer, item.dtype)
        CHECKS[item.clause.check](CheckContext(item.clause, case, backend, alpha=1e-6))

    example()


def test_every_fault_has_an_expected_message():
    assert set(EXPECTED_TEXT) == set(FAULTS)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_api_faults_end_as_clause_failures(fault):
    """Every clause, against a backend with one API fault: each passes (the clause does
    not use what is broken) or fails with a ClauseFailure that starts with the clause
    id and names the backend; any other exception is the harness breaking."""
    failures = {}
    for item in first_item_of_each_clause():
        try:
            run_one_example(item, FAULTS[fault]())
        except ClauseFailure as failure:
            failures[item.clause.id] = (item, str(failure).splitlines()[0])
    assert failures, f"no clause noticed the fault {fault}"
    for clause_id, (item, message) in failures.items():
        assert message.startswith(f"[{clause_id}] "), message
        assert f"backend '{fault}'" in message or "but nothing was raised" in message, message
    named = [message for item, message in failures.values()
             if EXPECTED_TEXT[fault].format(layer=item.layer) in message]
    assert named, f"no failure says {EXPECTED_TEXT[fault]!r}: {[m for _, m in failures.values()]}"
