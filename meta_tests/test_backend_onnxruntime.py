"""The built-in onnxruntime backend: it loads and declares what it claims, a fast subset
of its conformance items passes (so the adapter cannot rot), its seed replays a run,
and without the framework it says which extra to install."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnconform import BackendError
from nnconform.backends import BUILTIN, load_backend

pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs: pip install 'nnconform[onnxruntime]'")
pytest.importorskip("onnx", reason="the onnxruntime backend needs: pip install 'nnconform[onnxruntime]'")

from nnconform.backends import onnxruntime_backend  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def backend():
    return load_backend("onnxruntime")


def test_it_loads_by_name_and_declares_its_operators(backend):
    assert BUILTIN["onnxruntime"] == "nnconform.backends.onnxruntime_backend:OnnxRuntimeBackend"
    caps = backend.capabilities
    assert caps.layers == {"Dropout", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d",
                           "InstanceNorm2d", "InstanceNorm3d", "LayerNorm", "GroupNorm", "RMSNorm"}
    assert not caps.autograd
    assert caps.conventions == {"momentum": "old-weight", "running_var": "biased", "batches_tracked": "absent",
                                "validation": "at-first-call"}
    # kernels exist per operator for some dtypes only: the others are unsupported, not failed
    assert caps.unsupported_reason("Dropout", "bfloat16") is not None
    assert caps.unsupported_reason("InstanceNorm2d", "float64") is not None
    assert caps.unsupported_reason("LayerNorm", "bfloat16") is None
    assert not caps.supports_value("p", 1.0) and caps.supports_value("p", 0.5)
    assert not caps.supports_value("track_running_stats", True, layer="InstanceNorm2d")
    assert caps.supports_value("track_running_stats", True, layer="BatchNorm2d")
    assert backend.opset >= 23 and backend.version


def test_every_declared_layer_and_dtype_builds_and_runs(backend):
    """What the capabilities declare is what the CPU execution provider has kernels for."""
    params = {
        "Dropout": {"p": 0.5, "inplace": False},
        "BatchNorm2d": {"num_features": 3, "eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True},
        "InstanceNorm2d": {"num_features": 3, "eps": 1e-5, "momentum": 0.1, "affine": True,
                           "track_running_stats": False, "bias": True},
        "LayerNorm": {"normalized_shape": (4, 5), "eps": 1e-5, "elementwise_affine": True, "bias": True},
        "GroupNorm": {"num_groups": 3, "num_channels": 3, "eps": 1e-5, "affine": True, "bias": True},
        "RMSNorm": {"normalized_shape": 5, "eps": None, "elementwise_affine": True},
    }
    from nnconform.dtypes import numpy_dtype
    for layer, layer_params in params.items():
        for dtype in sorted(backend.capabilities.layer_dtypes[layer]):
            built = backend.build(layer, layer_params, dtype)
            x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(numpy_dtype(dtype))
            for mode in ("train", "eval"):
                getattr(built, mode)()
                out = built.forward(x)
                assert out.shape == x.shape and out.dtype == x.dtype, (layer, dtype, mode)
                assert np.isfinite(out.astype(np.float64)).all(), (layer, dtype, mode)


def test_batchnorm_keeps_the_running_statistics_the_node_returns(backend):
    layer = backend.build("BatchNorm1d", {"num_features": 2, "eps": 1e-5, "momentum": 0.25, "affine": False,
                                          "track_running_stats": True}, "float64")
    x = np.array([[1.0, 10.0], [3.0, 30.0]])
    layer.forward(x)
    state = layer.state()
    # momentum weighs the old value (ONNX): 0.25 * old + 0.75 * batch, with the biased variance
    assert np.allclose(state["running_mean"], 0.75 * np.array([2.0, 20.0]))
    assert np.allclose(state["running_var"], 0.25 + 0.75 * np.array([1.0, 100.0]))
    assert state["num_batches_tracked"] is None
    layer.eval()
    before = layer.state()
    layer.forward(x)
    assert all(np.array_equal(before[k], layer.state()[k]) for k in ("running_mean", "running_var"))


def test_seed_replays_the_masks_and_each_call_draws_a_new_one(backend):
    layer = backend.build("Dropout", {"p": 0.5, "inplace": False}, "float32")
    x = np.ones(4096, np.float32)

    def masks(seed):
        backend.seed(seed)
        return [layer.forward(x) != 0 for _ in range(3)]

    first, again, other = masks(7), masks(7), masks(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], other[0])


def test_a_fast_subset_of_its_conformance_items_passes(tmp_path):
    """A few clauses of every family it maps, with the shipped known deviations, at five
    examples each: a regression in the adapter fails here."""
    selection = " or ".join([
        "dropout.train.drop-rate:Dropout:float32", "dropout.eval.identity", "dropout.train.survivor-scale",
        "dropout.train.position-uniformity:Dropout:float32",
        "batchnorm.train.output:BatchNorm2d", "batchnorm.train.running-update:BatchNorm1d",
        "batchnorm.eval.output:BatchNorm3d:float32", "batchnorm.init",
        "instancenorm.train.output:InstanceNorm2d", "instancenorm.output.shape-dtype:InstanceNorm1d",
        "layernorm.train.output", "layernorm.input.shape-mismatch",
        "groupnorm.train.output", "rmsnorm.eps-none", "rmsnorm.train.output:RMSNorm:float16",
    ])
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:xdist", "--backend",
         "onnxruntime", "--conformance-profile", "ci", "--max-examples", "5", "-k", selection,
         f"--conformance-json={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    statuses = {item["id"]: item["status"] for item in json.loads(report.read_text())["items"]}
    assert statuses and "failed" not in statuses.values()
    assert statuses["batchnorm.train.output:BatchNorm2d:float32"] == "passed"
    assert statuses["dropout.train.position-uniformity:Dropout:float32"] == "known-deviation"
    assert statuses["layernorm.train.output:LayerNorm:bfloat16"] == "passed"
    assert statuses["instancenorm.train.output:InstanceNorm2d:float64"] == "unsupported"


def test_without_the_framework_it_names_the_extra(monkeypatch):
    monkeypatch.setattr(onnxruntime_backend, "onnxruntime", None)
    with pytest.raises(BackendError) as raised:
        onnxruntime_backend.OnnxRuntimeBackend()
    message = str(raised.value)
    assert message == ("backend 'onnxruntime': onnxruntime is not installed; install it with: "
                       "pip install 'nnconform[onnxruntime]'")
    assert "\n" not in message
