"""The torch-compile backend: it loads and declares what it claims, its layers run
compiled code (counted, never an eager fallback), a fast subset of its conformance
items passes, and without torch its error names the extra to install.

Compiling is slow (seconds per graph on a loaded 2-core machine), so these tests use
few layers, one dtype and few examples; inductor's on-disk cache makes reruns faster.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from nnconform.backend_api import BackendError  # noqa: E402
from nnconform.backends import load_backend, torch_compile_backend  # noqa: E402
from nnconform.backends.torch_backend import _LAYERS  # noqa: E402
from nnconform.vocabulary import DTYPES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def backend():
    return load_backend("torch-compile")


def test_backend_loads_and_declares_what_it_claims(backend):
    assert backend.name == "torch-compile"
    assert backend.version == torch.__version__
    capabilities = backend.capabilities
    assert capabilities.layers == frozenset(_LAYERS)
    assert capabilities.dtypes == frozenset(DTYPES)
    assert capabilities.autograd and capabilities.load_state
    assert capabilities.unsupported_values == {"momentum": (None,)}  # a graph break in torch 2.13
    assert capabilities.conventions == {}  # it is torch: torch's own conventions, the spec's defaults
    assert "ran no compiled code is an error" in capabilities.notes["fallbacks"]
    assert torch._dynamo.config.fail_on_recompile_limit_hit


def test_compiled_code_runs_with_no_fallback_and_new_float_values_reuse_nothing_silently(backend):
    """Over a small run the counters show compiled graphs, every forward call served by
    compiled code, gradients through AOTAutograd's compiled function, and no fallback."""
    backend.evidence()  # start the count here
    rng = np.random.default_rng(0)
    for eps, shape in ((1e-5, (4, 3, 2)), (1e-5, (5, 3, 7)), (1e-3, (3, 3, 4))):
        layer = backend.build("BatchNorm1d", {"num_features": 3, "eps": eps, "momentum": 0.1, "affine": True,
                                              "track_running_stats": True}, "float32")
        out = layer.forward(rng.standard_normal(shape).astype(np.float32))
        assert out.shape == shape and out.dtype == np.float32
    layer.requires_grad = True
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    layer.forward(x)
    grads = layer.backward(np.ones_like(x))
    assert grads["input"].shape == x.shape and grads["weight"].shape == (3,)
    notes = backend.evidence()
    assert notes["eager fallbacks"] == "0", notes
    assert notes["compiled calls"] == "4 of 4 forward calls", notes
    assert notes["compiled backward"] == "1", notes
    # three shapes of one rank share a graph; eps = 1e-3 is a new float value, which torch
    # 2.13 specializes (an ATen float argument): one more graph, never a fallback
    assert 1 <= int(notes["compiled graphs"]) <= 4, notes
    assert backend.evidence()["compiled graphs"] == "0"  # per item: the count restarts


def test_a_call_without_compiled_code_is_an_error(backend, monkeypatch):
    layer = backend.build("Dropout", {"p": 0.5, "inplace": False}, "float32")
    layer.eval()
    monkeypatch.setattr(backend, "compiled", lambda key: lambda module, x: module(x))  # an eager fallback
    with pytest.raises(torch_compile_backend.EagerFallback, match="without compiled code"):
        layer.forward(np.ones(3, np.float32))
    assert backend.evidence()["eager fallbacks"] == "1"


# One item each of dropout, batch norm (output and gradient) and layer norm, and one
# known deviation (its failure must be the one the known-deviations file names).
# Kept small for CI: every pinned or drawn float value is a new graph (seconds each).
SUBSET = " or ".join([
    "dropout.eval.identity:Dropout:float32", "batchnorm.train.output:BatchNorm2d:float32",
    "batchnorm.train.single-value-error:BatchNorm1d:float32",
])


def test_a_fast_subset_of_its_conformance_items_passes(tmp_path):
    """No item time limit: each new graph takes seconds to compile, and on a loaded
    machine tens of seconds, which is slow but not wrong."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:xdist", "--backend",
         "torch-compile", "--max-examples", "1", "--conformance-profile", "ci", "--clause-timeout", "0", "-k", SUBSET,
         f"--conformance-json={report}"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    items = json.loads(report.read_text())["items"]
    status = {item["id"]: item["status"] for item in items}
    assert status.pop("batchnorm.train.single-value-error:BatchNorm1d:float32") == "known-deviation", items
    assert set(status.values()) == {"passed"} and len(status) == 2, items
    for item in items:  # the backend's evidence() per item: compiled code ran, no fallback
        notes = item["backend_notes"]
        assert notes["eager fallbacks"] == "0", item
        if item["status"] == "passed":
            calls, _, total = notes["compiled calls"].split()[:3]
            assert calls == total and int(total) > 0, item


def test_without_torch_the_error_names_the_extra(monkeypatch):
    monkeypatch.setattr(torch_compile_backend, "torch", None)
    with pytest.raises(BackendError) as error:
        torch_compile_backend.TorchCompileBackend()
    assert str(error.value) == ("backend 'torch-compile': torch is not installed; "
                                "install it with: pip install 'nnconform[torch-compile]'")
