"""The backend API's hooks for framework adapters: the input shape passed to build
(for frameworks that fix the rank when a layer is built) and the evidence() hook,
whose notes reach each item's report entry. The validation convention and the
state checks are measured by zoo members (meta_tests/zoo/errors.py, state_api.py)."""

from __future__ import annotations

import json

from meta_tests.test_backends import run_suite, user_module  # noqa: F401  (fixture)

SHAPED = """
import numpy as np
from examples.numpy_backend import NumpyBackend

class Backend(NumpyBackend):
    name = "shaped"

    def build(self, layer, params, dtype, *, shape=None):
        assert shape is not None, "build was not given the input shape"
        built = super().build(layer, params, dtype)
        if layer.startswith("BatchNorm"):
            ranks = {"BatchNorm1d": (2, 3), "BatchNorm2d": (4,), "BatchNorm3d": (5,)}[layer]
            assert len(shape) in ranks, f"{layer} given shape {shape}"
            assert shape[1] == params["num_features"], f"shape {shape}, num_features {params['num_features']}"
        forward = built.forward

        def first_call_has_that_shape(x):
            assert x.shape == tuple(shape), f"build was given {shape}, the first call has {x.shape}"
            built.forward = forward
            return forward(x)

        built.forward = first_call_has_that_shape
        return built
"""

NOTED = """
from examples.numpy_backend import NumpyBackend

class Backend(NumpyBackend):
    name = "noted"
    builds = 0

    def build(self, layer, params, dtype):
        self.builds += 1
        return super().build(layer, params, dtype)

    def evidence(self):
        builds, self.builds = self.builds, 0
        return {"layers built": builds}

class Broken(NumpyBackend):
    name = "broken-evidence"

    def evidence(self):
        raise RuntimeError("counter unavailable")
"""


ITEM = "dropout.eval.identity:Dropout:float32"


def test_a_build_that_takes_shape_gets_the_first_inputs_shape(user_module):  # noqa: F811
    directory = user_module("shapedmod", SHAPED)
    result = run_suite(directory, "shapedmod:Backend", "-k",
                       "batchnorm.train.output and float32 or batchnorm.init.running-stats and float32 "
                       "or dropout.eval.identity and float32")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "7 passed" in out and "failed" not in out, out  # 5 items pass, 5 more are unsupported layers


def test_evidence_notes_reach_the_report_and_a_broken_hook_is_reported(user_module, tmp_path):  # noqa: F811
    directory = user_module("notedmod", NOTED)
    report = tmp_path / "report.json"
    result = run_suite(directory, "notedmod:Backend", "-k", "dropout.eval.identity and float32",
                       f"--conformance-json={report}")
    assert result.returncode == 0, result.stdout + result.stderr
    [item] = [entry for entry in json.loads(report.read_text())["items"] if entry["id"] == ITEM]
    assert item["status"] == "passed"
    assert int(item["backend_notes"]["layers built"]) == item["examples"] > 0

    result = run_suite(directory, "notedmod:Broken", "-k", "dropout.eval.identity and float32",
                       f"--conformance-json={report}")
    assert result.returncode == 0, result.stdout + result.stderr  # the verdict stands
    [item] = [entry for entry in json.loads(report.read_text())["items"] if entry["id"] == ITEM]
    assert item["backend_notes"] == {"evidence() error": "RuntimeError: counter unavailable"}
