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


POOLED = """
import numpy as np
from nnconform import Capabilities
from examples.numpy_backend import NumpyBackend

SEEN = []

class Backend(NumpyBackend):
    name = "pooled"

    def __init__(self):
        super().__init__()
        self.capabilities = Capabilities(**{**self.capabilities.__dict__, "value_pools": {"eps": 2, "momentum": 1}})

    def build(self, layer, params, dtype):
        SEEN.append((params.get("eps"), params.get("momentum")))
        return super().build(layer, params, dtype)

    def evidence(self):
        eps = sorted({repr(e) for e, _ in SEEN if e is not None})
        momentum = sorted({repr(m) for _, m in SEEN if m is not None})
        SEEN.clear()
        return {"eps": " ".join(eps), "momentum": " ".join(momentum)}

class Zero(NumpyBackend):
    name = "zero-pool"

    def __init__(self):
        super().__init__()
        self.capabilities = Capabilities(**{**self.capabilities.__dict__, "value_pools": {"eps": 0}})
"""


def test_declared_value_pools_bound_the_float_values_a_run_draws(user_module, tmp_path):  # noqa: F811
    """A backend that compiles every float value (Capabilities.value_pools) gets, per
    domain, only the declared number of drawn values besides the domain's pinned include
    values; another seed draws other values; the report names the pools."""
    from nnconform.spec import load_specs
    from nnconform.strategies import pooled_values
    directory = user_module("pooledmod", POOLED)
    clause = load_specs().by_id("batchnorm.train.output")
    eps, momentum = clause.params["eps"], clause.params["momentum"]
    seen = {}
    for seed in (3, 4):
        report = tmp_path / f"report{seed}.json"
        result = run_suite(directory, "pooledmod:Backend", "-k", "batchnorm.train.output and BatchNorm1d and float32",
                           "--max-examples", "12", "--seed", str(seed), f"--conformance-json={report}")
        assert result.returncode == 0, result.stdout + result.stderr
        data = json.loads(report.read_text())
        assert data["backend"]["value_pools"] == {"eps": 2, "momentum": 1}
        [item] = [entry for entry in data["items"] if entry["status"] == "passed"]
        drawn_eps = {float(v) for v in item["backend_notes"]["eps"].split()} - set(eps.include)
        drawn_momentum = {float(v) for v in item["backend_notes"]["momentum"].split()} - set(momentum.include)
        assert drawn_eps == set(pooled_values(eps, 2, seed)) and len(drawn_eps) == 2, drawn_eps
        assert drawn_momentum == set(pooled_values(momentum, 1, seed)), drawn_momentum
        seen[seed] = drawn_eps
    assert seen[3] != seen[4]

    result = run_suite(directory, "pooledmod:Zero", "-k", "dropout.eval.identity and float32")
    assert result.returncode != 0
    assert "value_pools must map parameter names to a count of at least 1" in result.stdout + result.stderr


def test_pooled_values_are_stratified_inside_the_domain_and_respect_unsupported_values():
    from nnconform.spec import Domain
    from nnconform.strategies import pooled_values
    eps = Domain("eps", "float", 1e-12, 1.0)
    for seed in range(20):
        low, high = pooled_values(eps, 2, seed)
        assert 1e-12 <= low <= 1e-6 <= high <= 1.0  # log-stratified: one in each half of the decades
        assert pooled_values(eps, 2, seed) == (low, high)
    p = Domain("p", "float", 0.05, 0.95)
    values = pooled_values(p, 3, 7, supports=lambda v: v > 0.4)
    assert len(values) == 3 and all(0.4 < v <= 0.95 for v in values)
    assert pooled_values(p, 2, 7, supports=lambda v: False) == ()
