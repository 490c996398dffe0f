"""A family added from outside the package: one spec file, one reference function and
one builder (the reference backend builds any family of the loaded specs), all in a
temporary directory, with no change to nnconform/. Its clauses are collected, run and
pass; a faulty implementation of the same layer fails them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from nnconform.spec import default_spec_dir

REPO = Path(__file__).resolve().parents[1]

TOY_SPEC = '''family = "toy"
summary = "Divide by the root mean square of the last axis (a toy family)."

[layers.ToyNorm]
ranks = [2, 3]

[parameters.eps]
kind = "float"
min = 1e-6
max = 1.0
default = 1e-3

[parameters.width]
kind = "shape"
from_input = "trailing"

[normalization]
over = "trailing"
trailing = "width"
centered = false

[reference]
step = "toy_reference:step"

[tolerance]
why = "one rounding of the result in the output dtype, with room"
rounding = 2
accumulation = 1
float32 = { rtol = 1e-5, atol = 1e-6 }
float64 = { rtol = 1e-12, atol = 1e-12 }

[[clause]]
id = "toy.train.output"
statement = "The output is x / sqrt(mean(x^2 over the last axis) + eps)."
mode = ["train", "eval"]
check = "close-to-reference"
observe = ["output"]
params.eps = { min = 1e-6, max = 1.0, include = [1e-6] }
input = { dtypes = ["float32", "float64"] }

[[clause]]
id = "toy.output.shape-dtype"
statement = "The output has the shape and dtype of the input."
mode = ["train", "eval"]
check = "shape-dtype"
input = { dtypes = ["float32", "float64"] }
'''

TOY_REFERENCE = '''import numpy as np

def step(x, state, params, training, dtype):
    return x / np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + params["eps"]), dict(state)
'''

TOY_FAULTY = '''import numpy as np
from nnconform.backends.reference_backend import ReferenceBackend


class EpsOutside(ReferenceBackend):
    """ToyNorm with eps added outside the square root."""
    name = "toy-eps-outside"

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        eps = params["eps"]

        def forward(x):
            x64 = x.astype(np.float64)
            return (x64 / (np.sqrt((x64 ** 2).mean(axis=-1, keepdims=True)) + eps)).astype(x.dtype)
        built.forward = forward
        return built
'''


def _toy_tree(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(default_spec_dir() / "suite.toml", specs / "suite.toml")
    (specs / "toy.toml").write_text(TOY_SPEC)
    (tmp_path / "toy_reference.py").write_text(TOY_REFERENCE)
    (tmp_path / "toy_faulty.py").write_text(TOY_FAULTY)
    return specs


def _run(tmp_path: Path, backend: str) -> tuple[int, dict]:
    specs = _toy_tree(tmp_path)
    report = tmp_path / f"{backend.replace(':', '_')}.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    done = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
                           f"--spec-dir={specs}", f"--backend={backend}", "--max-examples=10",
                           f"--conformance-json={report}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, json.loads(report.read_text())


def _statuses(report: dict) -> dict[str, str]:
    items = report["items"]
    items = items.values() if isinstance(items, dict) else items
    return {item["id"]: item["status"] for item in items}


def test_a_toy_family_from_outside_the_package_runs_and_passes(tmp_path):
    code, report = _run(tmp_path, "reference")
    statuses = _statuses(report)
    assert set(statuses) == {f"{clause}:ToyNorm:{dtype}" for clause in ("toy.train.output", "toy.output.shape-dtype")
                             for dtype in ("float32", "float64")}
    assert set(statuses.values()) == {"passed"}, statuses
    assert code == 0


def test_a_faulty_toy_layer_fails_its_clause(tmp_path):
    code, report = _run(tmp_path, "toy_faulty:EpsOutside")
    statuses = _statuses(report)
    assert statuses["toy.train.output:ToyNorm:float32"] == "failed", statuses
    assert statuses["toy.train.output:ToyNorm:float64"] == "failed", statuses
    assert statuses["toy.output.shape-dtype:ToyNorm:float64"] == "passed", statuses
    assert code == 1
