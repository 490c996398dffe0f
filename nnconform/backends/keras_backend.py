"""The keras adapter: drives Keras 3's own layers on its JAX backend, on the CPU.

This is the only module that imports keras (and jax). Each spec layer is built as the
keras layer that is its equivalent (see ``_RECIPES``), with the spec's parameters under
keras's names. A forward call goes through the layer's own ``__call__`` (input checks,
autocasting, the ``training`` argument) inside a ``keras.StatelessScope``, under
``jax.jit``, as Keras's JAX trainer runs a model: the layer's variables (and the state
of its seed generator) are passed in and the updated ones read back, so the adapter
holds the values and the keras layer only the program. Gradients are ``jax.vjp`` of
the same function. Nothing here re-implements a layer.

Layout: the suite's arrays are channel-first. Batch and group normalization take
``axis=1``, layer and RMS normalization the trailing axes as negative axes, and
SpatialDropout2D/3D ``data_format="channels_first"``. SpatialDropout1D only works
channels-last, so the adapter transposes (N, C, L) to (N, L, C) and back. Keras has no
unbatched inputs: an input without a batch axis (Dropout1d (C, L), Dropout3d and
FeatureAlphaDropout (C, D, H, W)) gets a batch axis of 1, and Dropout2d's (N, C, L)
input a trailing spatial axis of 1, (N, C, L, 1). These reshapes are the adapter's,
inside the compiled function, and are documented in docs/backend-api.md.

Speed: one compiled function per (layer, static parameters, input rank, dtype, mode),
reused by every layer built with them; jax compiles it once per input shape. The float
hyperparameters that keras only does arithmetic with (epsilon, momentum) are set on the
layer as traced values, so new values do not recompile; dropout's rate is not (keras
branches on ``rate > 0`` in Python), so a dropout layer compiles once per rate.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import sys
import time

import numpy as np

from nnconform.backend_api import BackendError, Capabilities
from nnconform.vocabulary import DTYPES

NAME = "keras"

_LAYERS = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
           "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "RMSNorm")

keras = jax = jnp = None  # imported by load_framework(), when the backend is created

# For Dropout and SpatialDropout1D/2D/3D only, XLA's LLVM optimization level 0:
# compiling threefry (dropout's random bits) at the default level takes seconds per
# input shape, and every example draws a new shape. Their computation is random bits,
# a quotient and a select, and meta_tests/test_backend_keras.py checks their outputs
# are bit-identical to the default level. The other layers keep the default level: it
# changes their reductions (and AlphaDropout's a * x + b) in the last bit.
DROPOUT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def load_framework():
    """Import keras on its JAX backend, with float64 enabled in jax; BackendError (one
    line) when keras or jax is missing or keras was already imported on another backend."""
    global keras, jax, jnp
    if keras is not None:
        return
    for module in ("keras", "jax"):
        if importlib.util.find_spec(module) is None:
            raise BackendError(f"backend {NAME!r}: {module} is not installed; "
                               f"install it with: pip install 'nnconform[{NAME}]'")
    loaded = sys.modules.get("keras")
    if loaded is not None:
        current = loaded.backend.backend()
        if current != "jax":
            raise BackendError(f"backend {NAME!r}: keras was already imported in this process on its {current!r} "
                               "backend; this backend needs keras on jax: set KERAS_BACKEND=jax before keras is "
                               "first imported")
    else:
        os.environ["KERAS_BACKEND"] = "jax"
    import jax as _jax
    # float64 arrays exist in jax only with jax_enable_x64; without it keras's float64
    # layers silently compute in float32 (docs/backend-api.md, keras section).
    _jax.config.update("jax_enable_x64", True)
    import jax.numpy as _jnp
    import keras as _keras
    keras, jax, jnp = _keras, _jax, _jnp


class Recipe:
    """How one spec layer is built as a keras layer and how its input is laid out."""
    keras_class: str
    traced: tuple[tuple[str, str], ...] = ()   # (keras attribute, spec parameter): floats passed at run time
    state_names: dict[str, str] = {}           # keras variable name -> spec state name
    rank_fixed_at_build = False                # keras's build fixes the input rank (BatchNormalization)
    compiler_options: dict = {}                # XLA options of the compiled call (the default level)

    def kwargs(self, params: dict) -> dict:
        raise NotImplementedError

    def static(self, params: dict) -> tuple:
        """The parameters the compiled function depends on (all but the traced floats)."""
        traced = {name for _, name in self.traced}
        return tuple(sorted((k, _hashable(v)) for k, v in params.items() if k not in traced))

    def build_shape(self, params: dict, shape: tuple | None) -> tuple | None:
        """The input shape (in keras's layout) the keras layer is built with; None: built at its first call."""
        return None

    def to_keras(self, x):
        return x

    def from_keras(self, y, x):
        return y


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


class DropoutRecipe(Recipe):
    keras_class = "Dropout"
    compiler_options = DROPOUT_COMPILER_OPTIONS

    def kwargs(self, params):
        return {"rate": params["p"]}


class SpatialDropout1DRecipe(DropoutRecipe):
    """SpatialDropout1D drops whole channels of a channels-last (N, L, C) input."""
    keras_class = "SpatialDropout1D"

    def to_keras(self, x):
        x = x[None] if x.ndim == 2 else x   # unbatched (C, L): one sample
        return jnp.swapaxes(x, 1, 2)

    def from_keras(self, y, x):
        return jnp.swapaxes(y, 1, 2).reshape(x.shape)


class SpatialDropout2DRecipe(DropoutRecipe):
    keras_class = "SpatialDropout2D"

    def kwargs(self, params):
        return {"rate": params["p"], "data_format": "channels_first"}

    def to_keras(self, x):
        return x[..., None] if x.ndim == 3 else x   # (N, C, L): each (sample, channel) one unit

    def from_keras(self, y, x):
        return y.reshape(x.shape)


class SpatialDropout3DRecipe(SpatialDropout2DRecipe):
    keras_class = "SpatialDropout3D"

    def to_keras(self, x):
        return x[None] if x.ndim == 4 else x        # unbatched (C, D, H, W): one sample


class AlphaDropoutRecipe(DropoutRecipe):
    keras_class = "AlphaDropout"
    compiler_options = {}   # level 0 changes a * x + b in the last bit: the default level


class FeatureAlphaDropoutRecipe(DropoutRecipe):
    """AlphaDropout with noise_shape (N, C, 1, 1, 1): one draw per (sample, channel)."""
    keras_class = "AlphaDropout"
    compiler_options = {}

    def kwargs(self, params):
        return {"rate": params["p"], "noise_shape": (None, None, 1, 1, 1)}

    def to_keras(self, x):
        return x[None] if x.ndim == 4 else x

    def from_keras(self, y, x):
        return y.reshape(x.shape)


class BatchNormRecipe(Recipe):
    keras_class = "BatchNormalization"
    traced = (("epsilon", "eps"), ("momentum", "momentum"))
    state_names = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                   "moving_variance": "running_var"}
    rank_fixed_at_build = True

    def __init__(self, rank: int):
        self.rank = rank

    def kwargs(self, params):
        return {"axis": 1, "epsilon": params["eps"], "momentum": params["momentum"],
                "center": params["affine"], "scale": params["affine"]}

    def build_shape(self, params, shape):
        # The channel count is the layer's parameter, whatever the first input has.
        rank = len(shape) if shape else self.rank
        return (None, params["num_features"]) + (None,) * (rank - 2)


class GroupNormRecipe(Recipe):
    keras_class = "GroupNormalization"
    traced = (("epsilon", "eps"),)
    state_names = {"gamma": "weight", "beta": "bias"}
    rank_fixed_at_build = True

    def kwargs(self, params):
        return {"groups": params["num_groups"], "axis": 1, "epsilon": params["eps"],
                "center": params["affine"] and params["bias"], "scale": params["affine"]}

    def build_shape(self, params, shape):
        # keras checks num_channels % groups here: the ValueError comes from build.
        rank = len(shape) if shape else 3
        return (None, params["num_channels"]) + (None,) * (rank - 2)


def _normalized(params) -> tuple[int, ...]:
    shape = params["normalized_shape"]
    return tuple(shape) if isinstance(shape, (tuple, list)) else (int(shape),)


class LayerNormRecipe(Recipe):
    keras_class = "LayerNormalization"
    traced = (("epsilon", "eps"),)
    state_names = {"gamma": "weight", "beta": "bias"}

    def kwargs(self, params):
        k = len(_normalized(params))
        affine = params["elementwise_affine"]
        return {"axis": list(range(-k, 0)), "epsilon": params["eps"], "center": affine and params["bias"],
                "scale": affine}

    def build_shape(self, params, shape):
        return (None,) + _normalized(params)


class RMSNormRecipe(Recipe):
    keras_class = "RMSNormalization"
    traced = (("epsilon", "eps"),)
    state_names = {"scale": "weight"}

    def kwargs(self, params):
        k = len(_normalized(params))
        return {"axis": list(range(-k, 0)), "epsilon": params["eps"]}

    def build_shape(self, params, shape):
        return (None,) + _normalized(params)


_RECIPES = {
    "Dropout": DropoutRecipe(), "Dropout1d": SpatialDropout1DRecipe(), "Dropout2d": SpatialDropout2DRecipe(),
    "Dropout3d": SpatialDropout3DRecipe(), "AlphaDropout": AlphaDropoutRecipe(),
    "FeatureAlphaDropout": FeatureAlphaDropoutRecipe(),
    "BatchNorm1d": BatchNormRecipe(2), "BatchNorm2d": BatchNormRecipe(4), "BatchNorm3d": BatchNormRecipe(5),
    "GroupNorm": GroupNormRecipe(), "LayerNorm": LayerNormRecipe(), "RMSNorm": RMSNormRecipe(),
}
_RANDOM = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}


class Program:
    """The compiled forward and backward of one keras layer configuration. The keras
    layer it traced is only the program: variable values come in as arguments."""

    def __init__(self, recipe: Recipe, layer, training: bool, stats: dict):
        self.recipe, self.layer, self.training = recipe, layer, training
        trainable, non_trainable = list(layer.trainable_variables), list(layer.non_trainable_variables)

        def run(trainable_values, non_trainable_values, x, floats):
            stats["traces"] += 1
            saved = {attr: getattr(layer, attr) for attr, _ in recipe.traced}
            try:
                for (attr, _), value in zip(recipe.traced, floats):
                    setattr(layer, attr, value)
                mapping = list(zip(trainable, trainable_values)) + list(zip(non_trainable, non_trainable_values))
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    y = layer(recipe.to_keras(x), training=training)
                updated = [scope.get_current_value(v) for v in non_trainable]
            finally:
                for attr, value in saved.items():
                    setattr(layer, attr, value)
            updated = [old if new is None else new for new, old in zip(updated, non_trainable_values)]
            return recipe.from_keras(y, x), updated

        def differentiated(trainable_values, non_trainable_values, x, floats, grad_output):
            """The forward call and its pullback of grad_output, in one program: a
            forward call made with requires_grad runs it with a zero grad_output, and
            backward runs it again from the same variables and seed state."""
            def output(trainable_values, x):
                return run(trainable_values, non_trainable_values, x, floats)
            y, pullback, updated = jax.vjp(output, trainable_values, x, has_aux=True)
            d_trainable, d_input = pullback(grad_output)
            return y, updated, d_input, d_trainable

        self.forward = jax.jit(run, compiler_options=recipe.compiler_options)
        self.differentiated = jax.jit(differentiated, compiler_options=recipe.compiler_options)


class KerasBackend:
    """Keras 3 layers on the JAX backend, on the CPU."""
    name = NAME
    device = "cpu"

    def __init__(self):
        load_framework()
        self.version = keras.__version__
        self.rng = np.random.default_rng()
        self._programs: collections.OrderedDict = collections.OrderedDict()
        self.stats = {"traces": 0, "programs": 0, "calls": 0, "call_seconds": 0.0}
        self.capabilities = Capabilities(
            layers=frozenset(_LAYERS), dtypes=frozenset(DTYPES), device=self.device, autograd=True,
            unsupported_values={"momentum": (None,), "track_running_stats": (False,), "inplace": (True,),
                                # RMSNormalization always has its scale; LayerNormalization(scale=False) has none
                                "RMSNorm.elementwise_affine": (False,)},
            conventions={"running_var": "biased", "momentum": "old-weight", "batches_tracked": "absent"},
            notes={"framework": f"keras {keras.__version__} on jax {jax.__version__} (jaxlib), CPU, "
                                "jax_enable_x64 on",
                   "mapping": "Dropout, SpatialDropout1D/2D/3D, AlphaDropout (FeatureAlphaDropout: noise_shape "
                              "(N, C, 1, 1, 1)), BatchNormalization(axis=1), LayerNormalization(axis=trailing), "
                              "GroupNormalization(axis=1), RMSNormalization(axis=trailing); see docs/backend-api.md"})

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def build(self, layer: str, params: dict, dtype: str, *, shape=None):
        if layer not in _RECIPES:
            raise BackendError(f"backend {self.name!r} has no layer {layer!r}")
        return KerasLayer(self, layer, _RECIPES[layer], dict(params), dtype, shape)

    def program(self, key: tuple, recipe: Recipe, keras_layer, training: bool) -> Program:
        found = self._programs.get(key)
        if found is None:
            found = self._programs[key] = Program(recipe, keras_layer, training, self.stats)
            self.stats["programs"] += 1
            if len(self._programs) > 256:
                self._programs.popitem(last=False)
        else:
            self._programs.move_to_end(key)
        return found

    def evidence(self) -> dict[str, str]:
        stats = dict(self.stats)
        self.stats.update(traces=0, programs=0, calls=0, call_seconds=0.0)
        per_call = stats["call_seconds"] / stats["calls"] * 1e6 if stats["calls"] else 0.0
        return {"keras": f"{stats['calls']} forward calls, {per_call:.0f} us each on average; "
                         f"{stats['programs']} new compiled programs, {stats['traces']} traces"}


class KerasLayer:
    requires_grad = False  # set by the suite before forward calls it will differentiate

    def __init__(self, backend: KerasBackend, name: str, recipe: Recipe, params: dict, dtype: str, shape):
        self.backend, self.name, self.recipe, self.params, self.dtype = backend, name, recipe, params, dtype
        self.training, self.called, self._last = True, False, None
        # None (RMSNorm's eps=None: keras's default epsilon) is an empty pytree leaf for jit.
        self.floats = tuple(None if params[name] is None else float(params[name]) for _, name in recipe.traced)
        self._make(recipe.build_shape(params, shape))

    def _make(self, build_shape) -> None:
        """A new keras layer (keras validates its arguments here), built with build_shape."""
        kwargs = self.recipe.kwargs(self.params)
        if self.name in _RANDOM:
            kwargs["seed"] = int(self.backend.rng.integers(1, 2**31 - 1))
        self.keras_layer = getattr(keras.layers, self.recipe.keras_class)(dtype=self.dtype, **kwargs)
        self.built_rank = None
        if build_shape is not None:
            self.keras_layer.build(build_shape)
            self.built_rank = len(build_shape)
        self.variables = {v.name: v for v in self.keras_layer.variables}
        self.trainable_values = [v.value for v in self.keras_layer.trainable_variables]
        self.non_trainable_values = [v.value for v in self.keras_layer.non_trainable_variables]

    @property
    def trainable(self) -> frozenset:
        names = self.recipe.state_names
        return frozenset(names[v.name] for v in self.keras_layer.trainable_variables if v.name in names)

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def _program(self, rank: int) -> Program:
        if self.recipe.rank_fixed_at_build and rank != self.built_rank and not self.called:
            # Built before the first input was known: build for the first input's rank,
            # with the values the layer holds (drawn state may have been loaded).
            values = self.state()
            channels = self.params.get("num_features", self.params.get("num_channels"))
            self._make((None, channels) + (None,) * (rank - 2))
            self.load_state({k: v for k, v in values.items() if v is not None})
        key = (self.name, self.recipe.static(self.params), self.dtype, self.built_rank, self.training)
        return self.backend.program(key, self.recipe, self.keras_layer, self.training)

    def forward(self, x: np.ndarray) -> np.ndarray:
        program = self._program(x.ndim)
        x = np.ascontiguousarray(x)
        before = self.non_trainable_values
        started = time.perf_counter()
        if self.requires_grad:
            self._last = (program, self.trainable_values, before, x, self.floats)
            out, self.non_trainable_values, _, _ = program.differentiated(
                self.trainable_values, before, x, self.floats, np.zeros_like(x))
        else:
            out, self.non_trainable_values = program.forward(self.trainable_values, before, x, self.floats)
        out = np.array(out)
        stats = self.backend.stats
        stats["calls"] += 1
        stats["call_seconds"] += time.perf_counter() - started
        self.called = True
        return out

    def backward(self, grad_output: np.ndarray) -> dict:
        """Gradients of the last forward call (made with requires_grad): jax.vjp of the
        same compiled function, from the same variables and seed state."""
        if self._last is None:
            raise RuntimeError("backward needs a forward call made with requires_grad = True first")
        program, trainable_values, before, x, floats = self._last
        self._last = None
        _, _, d_input, d_trainable = program.differentiated(trainable_values, before, x, floats,
                                                            np.ascontiguousarray(grad_output))
        grads = {"input": np.array(d_input), "weight": None, "bias": None}
        names = self.recipe.state_names
        for variable, value in zip(self.keras_layer.trainable_variables, d_trainable):
            grads[names[variable.name]] = np.array(value)
        return grads

    def state(self) -> dict:
        """The spec's state fields, None where the layer has none (keras keeps no
        num_batches_tracked: batches_tracked = "absent")."""
        if self.name in _RANDOM:
            return {}
        state = {name: None for name in self.recipe.state_names.values()}
        if self.name.startswith("BatchNorm"):
            state["num_batches_tracked"] = None
        for variable, value in [*zip(self.keras_layer.trainable_variables, self.trainable_values),
                                *zip(self.keras_layer.non_trainable_variables, self.non_trainable_values)]:
            if variable.name in self.recipe.state_names:
                state[self.recipe.state_names[variable.name]] = np.array(value)
        return state

    def load_state(self, values: dict) -> None:
        by_name = {spec: keras_name for keras_name, spec in self.recipe.state_names.items()}
        for name, value in values.items():
            keras_name = by_name.get(name)
            variable = self.variables.get(keras_name)
            if variable is None:
                raise ValueError(f"this keras {self.recipe.keras_class} has no {name}")
            array = jnp.asarray(np.asarray(value).astype(np.asarray(variable.value).dtype))
            # New lists: the values of an earlier forward call (kept for backward) stay as they were.
            self.trainable_values = [array if v is variable else old for v, old in
                                     zip(self.keras_layer.trainable_variables, self.trainable_values)]
            self.non_trainable_values = [array if v is variable else old for v, old in
                                         zip(self.keras_layer.non_trainable_variables, self.non_trainable_values)]
