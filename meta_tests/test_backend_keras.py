"""The built-in keras backend (Keras 3 on JAX): it loads and declares what it claims,
a fast subset of its conformance items passes, its compiled calls compute what the
layer computes, and without keras it says which extra to install.

Skipped, with the reason, where keras or jax is not installed. keras is never
imported here before the backend does it (the backend sets KERAS_BACKEND=jax first).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from nnconform.backend_api import BackendError
from nnconform.backends import keras_backend

ROOT = Path(__file__).resolve().parents[1]
INSTALLED = all(importlib.util.find_spec(name) is not None for name in ("keras", "jax"))
needs_keras = pytest.mark.skipif(not INSTALLED, reason="keras and jax are not installed: pip install 'nnconform[keras]'")

# A few clauses per family, each a different check kind, over float32 and a 16-bit dtype.
SUBSET = " or ".join([
    "dropout.train.survivor-scale:Dropout:float32", "dropout.eval.identity:Dropout:bfloat16",
    "dropout.train.drop-rate:Dropout:float32", "dropout.grad.mask:Dropout:float32",
    "channel-dropout.train.mask-values:Dropout2d:float32", "channel-dropout.unbatched:Dropout1d:float32",
    "alpha-dropout.train.mask-values:AlphaDropout:float32",
    "feature-alpha-dropout.unbatched:FeatureAlphaDropout:float32",
    "batchnorm.train.output:BatchNorm2d:float32", "batchnorm.train.running-update:BatchNorm1d:float32",
    "batchnorm.eval.output:BatchNorm3d:bfloat16", "batchnorm.grad.reference:BatchNorm2d:float32",
    "layernorm.train.output:LayerNorm:float32", "layernorm.grad.reference:LayerNorm:float32",
    "groupnorm.train.output:GroupNorm:float16", "groupnorm.init.indivisible:GroupNorm:float32",
    "rmsnorm.train.output:RMSNorm:float32", "rmsnorm.init.weight:RMSNorm:bfloat16",
])


@pytest.fixture(scope="module")
def backend():
    if not INSTALLED:
        pytest.skip("keras and jax are not installed: pip install 'nnconform[keras]'")
    from nnconform.backends import load_backend
    return load_backend("keras")


@needs_keras
def test_backend_loads_and_declares_what_it_claims(backend):
    import keras
    caps = backend.capabilities
    assert backend.name == "keras" and backend.version == keras.__version__
    assert keras.backend.backend() == "jax"
    assert caps.layers == frozenset(keras_backend._LAYERS)
    assert not caps.layers & {"InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"}
    assert caps.dtypes == frozenset({"float16", "bfloat16", "float32", "float64"}) and caps.autograd
    assert caps.conventions == {"running_var": "biased", "momentum": "old-weight", "batches_tracked": "absent"}
    assert not caps.supports_value("momentum", None) and not caps.supports_value("inplace", True)
    assert caps.supports_value("momentum", 0.1) and caps.supports_value("inplace", False)


@needs_keras
def test_state_before_the_first_call_and_a_rank_chosen_by_it(backend):
    """Keras fixes the input rank when a layer is built: state() works before the first
    call, and a BatchNorm1d first called on (N, C, L) runs with the state it was given."""
    layer = backend.build("BatchNorm1d", {"num_features": 3, "eps": 1e-5, "momentum": 0.9, "affine": True,
                                          "track_running_stats": True}, "float32")
    state = layer.state()
    assert state["num_batches_tracked"] is None and layer.trainable == {"weight", "bias"}
    assert np.array_equal(state["running_var"], np.ones(3, np.float32)) and state["running_var"].dtype == np.float32
    layer.load_state({"running_mean": np.array([1.0, 2.0, 3.0])})
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    layer.forward(x)
    batch_mean = x.mean(axis=(0, 2))
    np.testing.assert_allclose(layer.state()["running_mean"], 0.9 * np.array([1.0, 2.0, 3.0]) + 0.1 * batch_mean,
                               rtol=1e-6)


@needs_keras
def test_traced_hyperparameters_and_compiler_options_change_no_bit():
    """The adapter's compiled call (epsilon and momentum traced; for dropout layers, XLA's
    backend optimization level 0) gives bit for bit what the layer gives under a plain
    jax.jit with its Python float attributes and XLA's default options."""
    backend = keras_backend.KerasBackend()  # first: it sets KERAS_BACKEND=jax before keras is imported
    import jax
    import keras
    rng = np.random.default_rng(1)
    cases = [("BatchNorm2d", {"num_features": 3, "eps": 3e-4, "momentum": 0.7, "affine": True,
                              "track_running_stats": True}, (4, 3, 2, 5), True),
             ("BatchNorm1d", {"num_features": 3, "eps": 1e-3, "momentum": 0.2, "affine": False,
                              "track_running_stats": True}, (6, 3), False),
             ("LayerNorm", {"normalized_shape": (2, 5), "eps": 1e-5, "elementwise_affine": True, "bias": True},
              (3, 2, 5), True),
             ("GroupNorm", {"num_groups": 2, "num_channels": 4, "eps": 0.01, "affine": True, "bias": True},
              (3, 4, 7), True),
             ("RMSNorm", {"normalized_shape": 5, "eps": 1e-6, "elementwise_affine": True}, (4, 5), True),
             ("Dropout", {"p": 0.3, "inplace": False}, (64,), True),
             ("Dropout1d", {"p": 0.6, "inplace": False}, (2, 3, 8), True),
             ("AlphaDropout", {"p": 0.2, "inplace": False}, (5, 7), True),
             ("FeatureAlphaDropout", {"p": 0.4, "inplace": False}, (2, 3, 2, 2, 2), True)]
    for dtype in ("float32", "float16"):
        for name, params, shape, training in cases:
            layer = backend.build(name, params, dtype)
            layer.training = training
            x = rng.standard_normal(shape).astype(dtype)
            keras_layer = layer.keras_layer
            variables = keras_layer.trainable_variables + keras_layer.non_trainable_variables
            values = layer.trainable_values + layer.non_trainable_values

            recipe = layer.recipe

            def plain(values, x):
                with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                    return recipe.from_keras(keras_layer(recipe.to_keras(x), training=training), x)
            want = np.asarray(jax.jit(plain)(values, x))
            got = layer.forward(x)
            assert np.array_equal(got, want, equal_nan=True), (name, dtype, np.abs(got - want).max())


@needs_keras
def test_a_fast_subset_of_the_conformance_items_passes():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:cacheprovider",
         "--backend", "keras", "--max-examples", "3", "--seed", "1", "--clause-timeout", "0", "-k", SUBSET],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "CI": ""})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " failed" not in result.stdout.splitlines()[-1], result.stdout[-2000:]


def test_without_keras_the_error_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(keras_backend, "keras", None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "keras" else real(name, *a))
    with pytest.raises(BackendError) as raised:
        keras_backend.KerasBackend()
    message = str(raised.value)
    assert message == ("backend 'keras': keras is not installed; install it with: pip install 'nnconform[keras]'")
    assert "\n" not in message


def test_keras_already_imported_on_another_backend_is_refused(monkeypatch):
    real = importlib.util.find_spec
    fake = types.SimpleNamespace(backend=types.SimpleNamespace(backend=lambda: "tensorflow"))
    monkeypatch.setattr(keras_backend, "keras", None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name in ("keras", "jax") else real(name, *a))
    monkeypatch.setitem(sys.modules, "keras", fake)
    with pytest.raises(BackendError, match=r"already imported .* 'tensorflow' backend.*KERAS_BACKEND=jax"):
        keras_backend.KerasBackend()
