"""The ``nnconform`` command, as a framework-adapter author uses it: from the
directory holding their backend module, without PYTHONPATH, and with failures that
say how to repeat them with the same command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meta_tests.adapter_sources import eval_scaling_backend

BACKEND = eval_scaling_backend("adapter-in-cwd")


def nnconform_command() -> str:
    beside = Path(sys.executable).parent / "nnconform"
    found = str(beside) if beside.exists() else shutil.which("nnconform")
    if found is None:
        pytest.fail("the nnconform console script is not installed: pip install -e .")
    return found


def test_nnconform_imports_a_backend_from_the_current_directory_and_reproduces_with_itself(tmp_path):
    """No PYTHONPATH: the controller and both xdist workers import adapter.py from the
    current directory; the failure's reproduction command starts with nnconform."""
    (tmp_path / "adapter.py").write_text(BACKEND)
    item = "dropout.eval.identity:Dropout:float32"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "CI", "PYTEST_ADDOPTS")}
    result = subprocess.run([nnconform_command(), "--backend", "adapter:Backend", "-n", "2", "--seed", "1",
                             "--max-examples", "3", "-k", f"{item} or dropout.edge.p-zero:Dropout:float32",
                             "--conformance-json=report.json"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1, result.stdout + result.stderr
    reproduce = f"nnconform --backend adapter:Backend --seed 1 --max-examples 3 -k {item}"
    assert f"reproduce with: {reproduce}" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    statuses = {entry["id"]: entry["status"] for entry in report["items"]}
    assert statuses == {item: "failed", "dropout.edge.p-zero:Dropout:float32": "passed"}
    assert report["backend"]["name"] == "adapter-in-cwd"
    assert next(entry for entry in report["items"] if entry["id"] == item)["reproduce"] == reproduce
