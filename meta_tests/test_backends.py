"""Bad backends get clear errors that name the backend and what is wrong.

Load-time problems are checked through nnconform.backends.load_backend (what the
plugin calls) and, for the import error, through a real pytest run; problems in
built layers through a real conformance run, where they fail the clauses.
"""

import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nnconform.backend_api import BackendError, Capabilities
from nnconform.backends import ENTRY_POINT_GROUP, load_backend
from nnconform.items import all_items
from nnconform.spec import load_specs

ROOT = Path(__file__).resolve().parents[1]

GOOD_BACKEND = """
from examples.numpy_backend import NumpyBackend as Backend
"""

BROKEN_IMPORT = """
import numpy as np
from nnconform import Capabilities
import a_package_that_is_not_installed
"""

WRONG_CAPABILITIES = """
class Backend:
    name = "wrong-capabilities"
    capabilities = {"layers": ["Dropout"]}
    def build(self, layer, params, dtype):
        raise NotImplementedError
"""

NO_BUILD = """
from nnconform import Capabilities
class Backend:
    name = "no-build"
    capabilities = Capabilities(layers=frozenset({"Dropout"}))
"""

# Every layer declared, each broken in its own way.
BROKEN_LAYERS = """
import numpy as np
import torch
from nnconform import Capabilities
from examples.numpy_backend import NumpyBackend

class ListOutput:
    def __init__(self, layer):
        self.layer = layer
    def train(self): pass
    def eval(self): pass
    def state(self): return {}
    def forward(self, x): return x.tolist()

class TensorOutput(ListOutput):
    def forward(self, x): return torch.from_numpy(x.astype(np.float32))

class Backend:
    name = "broken-layers"
    capabilities = Capabilities(layers=frozenset({"Dropout", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"}))
    def build(self, layer, params, dtype):
        if layer == "Dropout":
            return ListOutput(layer)
        if layer == "BatchNorm1d":
            return None
        if layer == "BatchNorm2d":
            raise RuntimeError("kernel for BatchNorm2d not compiled")
        return TensorOutput(layer)
"""

DROPOUT_ONLY = """
from nnconform import Capabilities
from examples.numpy_backend import NumpyBackend

class Backend(NumpyBackend):
    name = "dropout-only"
    capabilities = Capabilities(layers=frozenset({"Dropout"}), autograd=True)
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write a user's backend module into a temporary directory on sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT))

    def write(name: str, source: str) -> Path:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        return tmp_path

    return write


def run_suite(directory: Path, backend: str, *args: str) -> subprocess.CompletedProcess:
    env_path = f"{directory}:{ROOT}"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:xdist",
         "--backend", backend, "--conformance-profile", "ci", "--max-examples", "3", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**_env(), "PYTHONPATH": env_path})


def count_items(*prefixes: str) -> int:
    """How many conformance items (clause x layer x dtype) have a clause id starting with a prefix."""
    return sum(1 for item in all_items(load_specs()) if item.clause.id.startswith(prefixes))


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_import_error_in_the_users_module_names_backend_module_and_exception(user_module):
    directory = user_module("badimport", BROKEN_IMPORT)
    result = run_suite(directory, "badimport:Backend")
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage error: nothing ran
    message = result.stderr
    assert "backend 'badimport:Backend'" in message
    assert "importing module 'badimport' failed with ModuleNotFoundError" in message
    assert "a_package_that_is_not_installed" in message
    assert "badimport.py:4" in message  # the line of the user's module that failed


def test_missing_attribute_lists_what_the_module_has(user_module):
    user_module("goodmod", GOOD_BACKEND)
    with pytest.raises(BackendError) as error:
        load_backend("goodmod:NumpyBackendd")
    assert "backend 'goodmod:NumpyBackendd'" in str(error.value)
    assert "module 'goodmod' has no attribute 'NumpyBackendd'" in str(error.value)
    assert "'Backend'" in str(error.value)


def test_missing_build_is_named(user_module):
    user_module("nobuild", NO_BUILD)
    with pytest.raises(BackendError, match=r"backend 'nobuild:Backend': Backend is missing \['build'\]"):
        load_backend("nobuild:Backend")


def test_capabilities_of_the_wrong_type(user_module):
    user_module("wrongcaps", WRONG_CAPABILITIES)
    with pytest.raises(BackendError, match=r"backend 'wrongcaps:Backend': capabilities must be "
                                           r"nnconform.Capabilities, got dict"):
        load_backend("wrongcaps:Backend")


def test_unknown_name_lists_the_available_backends():
    with pytest.raises(BackendError, match=r"unknown backend 'nosuch'; available backends are .*reference.*torch"):
        load_backend("nosuch")


def test_entry_point_selection(monkeypatch, user_module):
    user_module("goodmod", GOOD_BACKEND)
    registered = importlib.metadata.EntryPoint(name="my-numpy", value="goodmod:Backend", group=ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        return found + [registered] if kwargs.get("group") == ENTRY_POINT_GROUP else found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert load_backend("my-numpy").name == "numpy-example"


def test_broken_layers_fail_their_clauses_with_the_backend_and_layer_named(user_module):
    directory = user_module("brokenlayers", BROKEN_LAYERS)
    one_per_layer = " or ".join(["dropout.eval.identity:Dropout:float32"] + [
        f"batchnorm.train.output:BatchNorm{d}d:float32" for d in (1, 2, 3)])
    result = run_suite(directory, "brokenlayers:Backend", "-k", one_per_layer)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "4 failed" in out, out
    # a declared layer whose build returns None
    assert ("build('BatchNorm1d') returned NoneType, which lacks ['forward', 'train', 'eval', 'state'] "
            "of the Layer API") in out
    # a declared layer whose build raises
    assert "backend 'broken-layers' raised RuntimeError in build('BatchNorm2d'" in out
    assert "kernel for BatchNorm2d not compiled" in out
    # forward returning the wrong type
    assert "backend 'broken-layers': forward returned builtins.list, expected numpy.ndarray" in out
    assert "backend 'broken-layers': forward returned torch.Tensor, expected numpy.ndarray" in out


def test_unsupported_clauses_are_counted_and_flagged(user_module):
    directory = user_module("dropoutonly", DROPOUT_ONLY)
    result = run_suite(directory, "dropoutonly:Backend", "-m", "dropout or batchnorm", "-k",
                       "dropout.eval.identity or batchnorm.init")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    summary = out[out.index("nnconform conformance summary"):]
    passed, unsupported = count_items("dropout.eval.identity"), count_items("batchnorm.init.")
    assert f"{passed} passed, {unsupported} unsupported" in summary, summary
    assert f"{unsupported} items are not supported by the backend and were NOT checked" in summary


def test_torch_cuda_without_a_gpu_skips_everything_with_one_reason():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available: torch-cuda runs for real here")
    result = subprocess.run([sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:xdist",
                             "-rs", "--backend", "torch-cuda", "--allow-nothing-checked"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]  # nothing checked, allowed by the opt-in option
    reasons = {line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("SKIPPED [")}
    assert reasons == {"backend 'torch-cuda' unavailable: no CUDA device is available to torch on this machine"}
    assert f"{len(all_items(load_specs()))} skipped" in result.stdout


LAYOUT_BLIND = """
import numpy as np
from examples.numpy_backend import NumpyBackend

def as_if_c_contiguous(x):
    # what a kernel that takes the data pointer and assumes C order reads
    strides = tuple(int(np.prod(x.shape[i + 1:])) * x.itemsize for i in range(x.ndim))
    return np.lib.stride_tricks.as_strided(x, x.shape, strides).copy()

class Backend(NumpyBackend):
    name = "layout-blind"
    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        forward = built.forward
        built.forward = lambda x: forward(as_if_c_contiguous(x))
        return built
"""


def test_a_backend_that_assumes_contiguous_inputs_fails_the_layout_clauses(user_module):
    directory = user_module("layoutblind", LAYOUT_BLIND)
    result = run_suite(directory, "layoutblind:Backend", "-k", "batchnorm.train.output:BatchNorm2d:float32 "
                       "or dropout.eval.identity:Dropout:float64", "--max-examples", "20")
    out = result.stdout
    assert result.returncode == 1, out
    assert "2 failed" in out, out
    assert "[batchnorm.train.output] output after train call 1 differs from the float64 reference" in out
    assert "[dropout.eval.identity] output differs from the input" in out
    assert re.search(r"Draw \d+ \(layout\): '(strided|channels-last)'", out), out


def test_unsupported_values_per_layer_and_for_a_default():
    """A key "Layer.name" rules a value out for that layer only; a clause that does not
    vary a parameter whose default the backend rules out is unsupported, not failed."""
    from nnconform.items import Item, unsupported_reason
    from nnconform.spec import load_specs
    specs = load_specs()
    capabilities = Capabilities(
        layers=frozenset({"BatchNorm2d", "InstanceNorm2d", "RMSNorm"}),
        unsupported_values={"BatchNorm2d.track_running_stats": (False,), "InstanceNorm2d.track_running_stats": (True,),
                            "eps": (None,)})
    assert not capabilities.supports_value("track_running_stats", False, layer="BatchNorm2d")
    assert capabilities.supports_value("track_running_stats", False, layer="InstanceNorm2d")
    assert capabilities.supports_value("track_running_stats", False)  # no layer: only plain keys count

    def reason(clause_id, layer):
        return unsupported_reason(Item(specs.by_id(clause_id), layer, "float32"), capabilities)

    assert "track_running_stats=False" in reason("batchnorm.untracked", "BatchNorm2d")
    assert reason("instancenorm.untracked", "InstanceNorm2d") is None
    assert "track_running_stats=True" in reason("instancenorm.init.running-stats", "InstanceNorm2d")
    assert reason("batchnorm.train.output", "BatchNorm2d") is None  # draws True only
    assert "eps=None" in reason("rmsnorm.init.weight", "RMSNorm") and "default" in reason("rmsnorm.init.weight", "RMSNorm")
