"""A hang costs minutes, not hours.

A backend whose every call hangs used to make each of the hundreds of items wait
out the whole --clause-timeout. Now the first hang of a layer costs one time
limit; the layer's other items fail at once, naming the item that hung; every
other item runs under the probe limit (max(0.1 x --clause-timeout, 5 s)); and once
two layers have hung, no further item is run. So the run costs about one limit and
one probe limit, per worker, whatever the number of items or layers, and a slow
backend is told apart from a hung one.

The bound is proved at --clause-timeout 10 rather than the default 120 to keep this
test's cost near a minute: the mechanism does not depend on the limit (the
assertions count how many items waited the full limit and how many the probe
limit), and the same run at 120 s costs 120 + 12 s plus start-up, well under the
5 minutes the gate promises (docs/reports.md#time-limits).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jsonschema

from nnconform.hangs import PROBE_FLOOR_S

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
WORKERS = 2


def run_suite(tmp_path: Path, module: str, *args: str, limit_s: float = 240):
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    command = [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:cacheprovider",
               "--backend", f"meta_tests.broken.{module}:Backend", "--seed", "0", "--max-examples", "3",
               "--conformance-json", str(json_path), "--conformance-md", str(md_path), *args]
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("PYTEST_XDIST") and name not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit_s)
    seconds = time.monotonic() - started
    assert json_path.exists() and md_path.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(json_path.read_text())
    jsonschema.validate(report, SCHEMA)
    return done, report, seconds


def test_a_backend_that_hangs_on_every_call_gives_a_complete_run_in_minutes(tmp_path):
    timeout = 10
    done, report, seconds = run_suite(tmp_path, "hanging_everywhere", "-n", str(WORKERS),
                                      "--clause-timeout", str(timeout))
    assert done.returncode == 1, done.stdout[-3000:]
    items = report["items"]
    assert len(items) > 100 and report["run"]["complete"] is True
    assert {item["status"] for item in items} == {"timed-out"}, "every item has a status, and each timed out"
    full = [item for item in items if item["message"].startswith(f"[{item['clause']}] timed out after {timeout} s")]
    probe = [item for item in items if item["message"].startswith(f"[{item['clause']}] timed out after "
                                                                  f"{PROBE_FLOOR_S:g} s (the probe limit")]
    not_run = [item for item in items if " not run: the backend hung on " in item["message"]]
    assert len(full) + len(probe) + len(not_run) == len(items), [item["message"] for item in items][:5]
    assert 1 <= len(full) <= WORKERS and len(probe) <= WORKERS, (len(full), len(probe))
    assert all("the backend hung: its seed call had not returned" in item["message"] for item in full + probe)
    assert any(" not run: the backend hung on 2 layers earlier in this run (" in item["message"] for item in not_run)
    # Without the mechanism: len(items) * timeout / WORKERS, about an hour here.
    budget = timeout + PROBE_FLOOR_S + 150  # + start-up, collection and reports, on a busy machine
    assert seconds < budget, f"the run took {seconds:.0f} s, more than {budget:.0f} s"
    assert "⌛ timed-out" in (tmp_path / "report.md").read_text()


def test_a_slow_backend_is_told_from_a_hung_one_and_its_layer_goes_on(tmp_path):
    """Each Dropout forward call takes 20 ms: position-uniformity (about 1,900 calls)
    runs out of time as slow, not hung; the layer is not marked, so a later Dropout
    item still runs, under the full limit, and passes (in about a second, alone)."""
    uniformity, switching = "dropout.train.position-uniformity:Dropout:float32", "dropout.mode.switching:Dropout:float32"
    done, report, _ = run_suite(tmp_path, "slow", "-k", f"{uniformity} or {switching}", "--clause-timeout", "8")
    found = {item["id"]: item for item in report["items"]}
    assert found[uniformity]["status"] == "timed-out", found[uniformity]
    assert found[uniformity]["message"].startswith(
        "[dropout.train.position-uniformity] timed out after 8 s (--clause-timeout): the backend is slow, not hung: "
    ), found[uniformity]["message"]
    assert re.search(r"\d+ backend calls completed in this item, 0\.0[2-9]\d* s each on average",
                     found[uniformity]["message"]), found[uniformity]["message"]
    assert found[switching]["status"] == "passed", found[switching]


def test_a_hang_the_alarm_cannot_stop_is_recorded_before_the_process_ends(tmp_path):
    """forward blocks SIGALRM and sleeps, as a hang in native code: the watchdog ends
    the worker 10 s after the limit (crashed), but first records the hang, so the
    worker xdist starts next does not run the layer's later item. (A limit of 5 s, as
    the other layers' items must pass under it on a busy machine.)"""
    train, evaluate = "batchnorm.train.output:BatchNorm2d:float32", "batchnorm.eval.output:BatchNorm2d:float32"
    done, report, _ = run_suite(tmp_path, "native_hang", "-n", "1", "--clause-timeout", "5",
                                "-k", "float32 and (batchnorm.train.output or batchnorm.eval.output)")
    found = {item["id"]: item for item in report["items"]}
    assert found.pop(train)["status"] == "crashed"
    assert found[evaluate]["status"] == "timed-out" and found.pop(evaluate)["message"].startswith(
        f"[batchnorm.eval.output] not run: the backend hung on layer BatchNorm2d earlier in this run ({train}")
    assert {item["status"] for item in found.values()} == {"passed"} and len(found) == 4, found
