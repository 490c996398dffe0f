"""The built-in flax backend: it loads and declares what docs/backend-api.md says it
does, a fast subset of its conformance items passes (so the adapter cannot rot), and
without flax it fails with one line naming the extra to install.

The tests that need flax are skipped, naming it, where flax is not installed.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from nnconform.backend_api import BackendError
from nnconform.backends import BUILTIN, load_backend

ROOT = Path(__file__).resolve().parents[1]
needs_flax = pytest.mark.skipif(importlib.util.find_spec("flax") is None,
                                reason="flax is not installed (pip install 'nnconform[flax]')")

LAYERS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
          "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm", "GroupNorm", "RMSNorm"}

# A few clauses per family, float32 and float64, that the adapter must keep passing:
# statistics, exact values, reference outputs, state updates, gradients, raises.
FAST_SUBSET = [
    "dropout.train.drop-rate:Dropout:float32",
    "dropout.train.survivor-scale:Dropout:float32",
    "dropout.eval.identity:Dropout:float16",
    "dropout.grad.mask:Dropout:float32",
    "channel-dropout.train.mask-values:Dropout2d:float32",
    "channel-dropout.unbatched:Dropout1d:float32",
    "channel-dropout.grad.mask:Dropout3d:float64",
    "batchnorm.init.affine:BatchNorm2d:float32",
    "batchnorm.eval.output:BatchNorm1d:float32",
    "batchnorm.output.shape-dtype:BatchNorm3d:bfloat16",
    "instancenorm.output.shape-dtype:InstanceNorm1d:float32",
    "layernorm.init.affine:LayerNorm:float32",
    "layernorm.output.shape-dtype:LayerNorm:float16",
    "groupnorm.init.indivisible:GroupNorm:float32",
    "groupnorm.output.shape-dtype:GroupNorm:float32",
    "rmsnorm.train.output:RMSNorm:float32",
    "rmsnorm.grad.reference:RMSNorm:float32",
]


@needs_flax
def test_the_flax_backend_loads_and_declares_what_it_supports():
    backend = load_backend("flax")
    caps = backend.capabilities
    assert backend.name == "flax" and backend.version
    assert caps.layers == LAYERS  # no alpha dropout: flax.linen has none
    assert caps.dtypes == {"float16", "bfloat16", "float32", "float64"}
    assert caps.autograd and caps.load_state
    assert caps.conventions == {"running_var": "biased", "momentum": "old-weight", "batches_tracked": "absent",
                                "validation": "at-first-call"}
    assert not caps.supports_value("inplace", True) and caps.supports_value("inplace", False)
    assert not caps.supports_value("momentum", None)
    assert not caps.supports_value("track_running_stats", False, layer="BatchNorm2d")
    assert caps.supports_value("track_running_stats", True, layer="BatchNorm2d")
    assert not caps.supports_value("track_running_stats", True, layer="InstanceNorm2d")
    assert caps.supports_value("track_running_stats", False, layer="InstanceNorm2d")
    import jax
    assert jax.config.jax_enable_x64, "the backend switches on float64"


@needs_flax
def test_a_fast_subset_of_the_flax_conformance_items_passes():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:xdist", "--backend", "flax",
         "--conformance-profile", "ci", "--max-examples", "5", "-k", " or ".join(FAST_SUBSET)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    summary = result.stdout[result.stdout.index("nnconform conformance summary"):]
    assert f"{len(FAST_SUBSET)} passed" in summary, summary


def test_without_flax_the_backend_names_the_extra(monkeypatch):
    flax_backend = pytest.importorskip("nnconform.backends.flax_backend")
    monkeypatch.setattr(flax_backend, "flax", None)
    with pytest.raises(BackendError) as raised:
        load_backend("flax")
    message = str(raised.value)
    assert message == "backend 'flax': flax is not installed; install it with: pip install 'nnconform[flax]'"
    assert "\n" not in message
    assert BUILTIN["flax"] == "nnconform.backends.flax_backend:FlaxBackend"
