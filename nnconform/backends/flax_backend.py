"""The flax adapter: drives flax.linen's own layers on JAX (CPU).

This is the only module that imports flax and jax. It never re-implements a layer:
every forward call is ``module.apply`` of a flax.linen module (nn.Dropout,
nn.BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm, nn.RMSNorm) with flax's
own defaults (``use_fast_variance=True`` included), and every gradient comes from
``jax.vjp`` of that same apply. The mapping of each torch layer name is in
``docs/backend-api.md`` ("Built-in framework backends: flax").

What the adapter adds around the layers:

- ``jax_enable_x64`` is switched on when the backend is created, so that float64
  arrays stay float64 (JAX silently computes in float32 otherwise). It is a
  process-wide JAX flag.
- The suite's arrays are channel-first (axis 1). BatchNorm and InstanceNorm take the
  axis as an argument (``axis=1``, ``feature_axes=1``); flax's GroupNorm only takes
  channels last, so the adapter moves axis 1 to the end and back around it.
- Apply functions are jitted once per (layer, structure, dtype) and compiled by JAX
  per input shape; eps and momentum enter them as traced scalars (flax only does
  arithmetic with them), so a new value does not recompile. Dropout's rate is a
  static attribute (flax branches on it in Python): each rate compiles once.
- Randomness: one ``jax.random.key`` from ``seed()``; each training call of a
  dropout layer folds a fresh counter into it, so every call draws a fresh mask
  and a seeded run replays exactly.
"""

from __future__ import annotations

import functools

import numpy as np

from nnconform.backend_api import BackendError, Capabilities

try:
    import flax
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
except ImportError as error:  # pragma: no cover - exercised only without flax
    flax = None
    _IMPORT_ERROR = error

DROPOUTS = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d")
BATCHNORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
INSTANCENORMS = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
LAYERS = DROPOUTS + BATCHNORMS + INSTANCENORMS + ("LayerNorm", "GroupNorm", "RMSNorm")
# The rank of an input without its batch axis, for layers that accept one (specs'
# unbatched_ranks): such an input is one sample, its channel axis is 0.
UNBATCHED_RANK = {"Dropout1d": 2, "Dropout3d": 4, "InstanceNorm1d": 2, "InstanceNorm2d": 3, "InstanceNorm3d": 4}
DTYPES = ("float16", "bfloat16", "float32", "float64")

MISSING = "backend 'flax': flax is not installed; install it with: pip install 'nnconform[flax]'"


def _jax_dtype(name: str):
    return {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32, "float64": jnp.float64}[name]


class FlaxBackend:
    """flax.linen on JAX's CPU device."""
    name = "flax"

    def __init__(self):
        if flax is None:
            raise BackendError(MISSING)
        # float64 needs it: without the flag JAX turns every float64 array into float32.
        jax.config.update("jax_enable_x64", True)
        self.device = jax.devices("cpu")[0]
        self.version = flax.__version__
        self.capabilities = Capabilities(
            layers=frozenset(LAYERS), dtypes=frozenset(DTYPES), device=f"cpu (jax {jax.__version__})",
            autograd=True,
            unsupported_values={
                "inplace": (True,),                   # JAX arrays are immutable: no layer writes into its input
                "momentum": (None,),                  # nn.BatchNorm has no cumulative average
                "BatchNorm1d.track_running_stats": (False,),  # nn.BatchNorm always keeps batch_stats
                "BatchNorm2d.track_running_stats": (False,),
                "BatchNorm3d.track_running_stats": (False,),
                "InstanceNorm1d.track_running_stats": (True,),  # nn.InstanceNorm keeps no running statistics
                "InstanceNorm2d.track_running_stats": (True,),
                "InstanceNorm3d.track_running_stats": (True,),
            },
            conventions={"running_var": "biased", "momentum": "old-weight", "batches_tracked": "absent",
                         "validation": "at-first-call"},
            notes={
                "x64": "jax_enable_x64 is switched on by the backend (process-wide), so float64 stays float64",
                "layout": "GroupNorm: flax takes channels last; the adapter moves axis 1 to the end and back",
                "jit": "apply functions are jitted per layer structure and dtype; eps and momentum are traced",
                "eps=None": "RMSNorm eps=None is passed as epsilon=finfo(float32).eps (float64's for float64): "
                            "the value the spec gives None; flax has no None",
            })
        self._key = jax.random.key(0)
        self._counter = 0
        self.compiles = 0  # traces of a jitted apply function, for evidence()
        self._compiles_reported = 0

    def seed(self, seed: int) -> None:
        self._key = jax.random.key(seed)
        self._counter = 0

    def next_key(self):
        """The backend's key and a fresh counter to fold into it (inside the jitted call)."""
        self._counter += 1
        return self._key, np.uint32(self._counter % 2**32)

    def evidence(self) -> dict:
        new = self.compiles - self._compiles_reported
        self._compiles_reported = self.compiles
        return {"jax compilations": str(new)}

    def build(self, layer: str, params: dict, dtype: str, *, shape=None):
        if layer not in LAYERS:
            raise BackendError(f"backend {self.name!r} has no layer {layer!r}")
        if layer in DROPOUTS:
            return DropoutLayer(self, layer, params)
        return NormLayer(self, layer, params, dtype)


def to_jax(array: np.ndarray):
    """A device copy of a numpy array (any layout; bfloat16 is ml_dtypes.bfloat16 in both)."""
    return jnp.asarray(np.ascontiguousarray(array))


def to_numpy(array) -> np.ndarray:
    return np.array(array)  # a writable copy


# --- jitted apply functions, one per layer structure --------------------------------

def _counting(backend: FlaxBackend, function):
    """jax.jit of function, counting its traces (each one a compilation) on the backend."""
    def traced(*args, **kwargs):
        backend.compiles += 1
        return function(*args, **kwargs)
    return jax.jit(traced)


@functools.cache
def _dropout_fns(backend: FlaxBackend, rate: float, broadcast_dims: tuple):
    module = nn.Dropout(rate=rate, broadcast_dims=broadcast_dims)

    def forward(x, key, counter):
        return module.apply({}, x, deterministic=False, rngs={"dropout": jax.random.fold_in(key, counter)})

    def gradient(x, key, counter, grad_output):
        out, pullback = jax.vjp(lambda v: forward(v, key, counter), x)
        return pullback(grad_output)[0]

    return _counting(backend, forward), _counting(backend, gradient)


class DropoutLayer:
    trainable = frozenset()
    requires_grad = False

    def __init__(self, backend: FlaxBackend, layer: str, params: dict):
        self.backend, self.layer, self.training = backend, layer, True
        self.rate = float(params["p"])  # flax takes any float: it does not check the range
        self._last = None

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self) -> dict:
        return {}

    def _broadcast_dims(self, ndim: int) -> tuple:
        """Channel dropout shares one mask over every axis after the channel axis."""
        if self.layer == "Dropout":
            return ()
        channel = 0 if UNBATCHED_RANK.get(self.layer) == ndim else 1
        return tuple(range(channel + 1, ndim))

    def forward(self, x: np.ndarray) -> np.ndarray:
        xj = to_jax(x)
        if not self.training:
            self._last = None
            return to_numpy(nn.Dropout(rate=self.rate).apply({}, xj, deterministic=True))
        forward, _ = _dropout_fns(self.backend, self.rate, self._broadcast_dims(x.ndim))
        key, counter = self.backend.next_key()
        self._last = (xj, key, counter)
        return to_numpy(forward(xj, key, counter))

    def backward(self, grad_output: np.ndarray) -> dict:
        g = to_jax(grad_output)
        if self._last is None:  # eval mode: the identity
            _, pullback = jax.vjp(lambda v: nn.Dropout(rate=self.rate).apply({}, v, deterministic=True), g)
            grad = pullback(g)[0]
        else:
            xj, key, counter = self._last
            _, gradient = _dropout_fns(self.backend, self.rate, self._broadcast_dims(xj.ndim))
            grad = gradient(xj, key, counter, g)
        return {"input": to_numpy(grad), "weight": None, "bias": None}


# --- normalization layers -------------------------------------------------------------

def _epsilon(eps, dtype: str) -> float:
    """flax's epsilon for the spec's eps. RMSNorm's eps=None (torch's default) stands for
    the machine epsilon of the computation type; flax has no None, so the adapter passes
    that number: float32's for 16- and 32-bit layers (flax reduces in float32), float64's
    for float64."""
    if eps is None:
        return float(np.finfo(np.float64 if dtype == "float64" else np.float32).eps)
    return float(eps)


def _module(layer: str, static: tuple, eps, momentum, ndim: int):
    """The flax.linen module for one call. ``static`` is the layer's structure."""
    dtype, affine, use_bias, extra = static
    common = dict(epsilon=eps, dtype=dtype, param_dtype=dtype, use_scale=affine, use_bias=affine and use_bias)
    if layer in BATCHNORMS:
        return nn.BatchNorm(axis=1, momentum=momentum, **common)
    if layer in INSTANCENORMS:
        return nn.InstanceNorm(feature_axes=1, **common)
    if layer == "GroupNorm":
        return nn.GroupNorm(num_groups=extra, **common)
    axes = tuple(range(-extra, 0))  # the last len(normalized_shape) axes
    if layer == "LayerNorm":
        return nn.LayerNorm(reduction_axes=axes, feature_axes=axes, **common)
    del common["use_bias"]
    return nn.RMSNorm(reduction_axes=axes, feature_axes=axes, **common)


def _arrange(layer: str, x):
    """Into the layout the flax module takes: GroupNorm wants channels last."""
    return jnp.moveaxis(x, 1, -1) if layer == "GroupNorm" and x.ndim > 2 else x


def _restore(layer: str, y):
    return jnp.moveaxis(y, -1, 1) if layer == "GroupNorm" and y.ndim > 2 else y


@functools.cache
def _init_fn(backend: FlaxBackend, layer: str, static: tuple):
    """flax's init of the layer, jitted: one compilation per dummy shape instead of one
    per primitive (eager init compiles each of its twenty-odd operations per shape)."""
    def init(dummy, eps, momentum):
        module = _module(layer, static, eps, momentum, dummy.ndim)
        kwargs = {"use_running_average": False} if layer in BATCHNORMS else {}
        return module.init(jax.random.key(0), dummy, **kwargs)
    return _counting(backend, init)


@functools.cache
def _norm_fns(backend: FlaxBackend, layer: str, static: tuple, training: bool):
    """(forward, gradient) for one layer structure and mode, jitted."""
    batchnorm = layer in BATCHNORMS

    def apply(params, stats, x, eps, momentum):
        module = _module(layer, static, eps, momentum, x.ndim)
        variables = {"params": params, **({"batch_stats": stats} if batchnorm else {})}
        kwargs = {"use_running_average": not training} if batchnorm else {}
        if batchnorm and training:
            y, updated = module.apply(variables, _arrange(layer, x), mutable=["batch_stats"], **kwargs)
            return _restore(layer, y), updated["batch_stats"]
        return _restore(layer, module.apply(variables, _arrange(layer, x), **kwargs)), stats

    def gradient(params, stats, x, eps, momentum, grad_output):
        _, pullback, _ = jax.vjp(lambda p, v: apply(p, stats, v, eps, momentum), params, x, has_aux=True)
        return pullback(grad_output)

    return _counting(backend, apply), _counting(backend, gradient)


class NormLayer:
    requires_grad = False

    def __init__(self, backend: FlaxBackend, layer: str, params: dict, dtype: str):
        self.backend, self.layer, self.dtype_name, self.training = backend, layer, dtype, True
        self.np_dtype = np.dtype(_jax_dtype(dtype))
        if layer in BATCHNORMS:
            channels, extra, use_bias = params["num_features"], None, True
            affine = params["affine"]
        elif layer in INSTANCENORMS:
            channels, extra, use_bias = params["num_features"], None, params.get("bias", True)
            affine = params["affine"]
        elif layer == "GroupNorm":
            channels, extra, use_bias = params["num_channels"], int(params["num_groups"]), params.get("bias", True)
            affine = params["affine"]
        else:
            shape = params["normalized_shape"]
            shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
            channels, extra, use_bias = shape, len(shape), params.get("bias", True)
            affine = params["elementwise_affine"]
        self.eps = _epsilon(params["eps"], dtype)
        self.momentum = float(params["momentum"]) if layer in BATCHNORMS else 0.0
        self.static = (_jax_dtype(dtype), bool(affine), bool(use_bias), extra)
        self.variables = self._init(channels)
        self._last = None

    def _init(self, channels) -> dict:
        """flax's own init, on a dummy input of the smallest shape the layer takes."""
        if self.layer in ("LayerNorm", "RMSNorm"):
            dummy_shape = channels                        # the normalized shape itself
        elif self.layer == "GroupNorm":
            dummy_shape = (1, channels)                   # (N, C): channels last already
        else:
            dummy_shape = (1, channels, 1)                # (N, C, L), axis 1 the channel axis
        init = _init_fn(self.backend, self.layer, self.static)
        variables = init(np.zeros(dummy_shape, self.np_dtype), self.eps, self.momentum)
        return {"params": dict(variables.get("params", {})), "batch_stats": dict(variables.get("batch_stats", {}))}

    @property
    def trainable(self) -> frozenset:
        names = {"scale": "weight", "bias": "bias"}
        return frozenset(names[name] for name in self.variables["params"])

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def _fns(self):
        return _norm_fns(self.backend, self.layer, self.static, self.training)

    def _call_input(self, x: np.ndarray):
        """The input as the flax module gets it: an unbatched input gains its batch axis."""
        xj = to_jax(x)
        unbatched = UNBATCHED_RANK.get(self.layer) == x.ndim
        return (xj[None] if unbatched else xj), unbatched

    def forward(self, x: np.ndarray) -> np.ndarray:
        xj, unbatched = self._call_input(x)
        forward, _ = self._fns()
        params, stats = self.variables["params"], self.variables["batch_stats"]
        self._last = (params, stats, xj, unbatched, self.training)
        y, new_stats = forward(params, stats, xj, self.eps, self.momentum)
        self.variables["batch_stats"] = new_stats
        return to_numpy(y[0] if unbatched else y)

    def backward(self, grad_output: np.ndarray) -> dict:
        if self._last is None:
            raise RuntimeError("backward needs a forward call first")
        params, stats, xj, unbatched, training = self._last
        g = to_jax(grad_output)
        _, gradient = _norm_fns(self.backend, self.layer, self.static, training)
        grad_params, grad_x = gradient(params, stats, xj, self.eps, self.momentum, g[None] if unbatched else g)
        return {"input": to_numpy(grad_x[0] if unbatched else grad_x),
                "weight": to_numpy(grad_params["scale"]) if "scale" in grad_params else None,
                "bias": to_numpy(grad_params["bias"]) if "bias" in grad_params else None}

    def state(self) -> dict:
        """The spec's fields, in the layer's dtype (flax keeps batch_stats in float32)."""
        params, stats = self.variables["params"], self.variables["batch_stats"]

        def field(value):
            return None if value is None else np.asarray(value).astype(self.np_dtype)

        state = {"weight": field(params.get("scale")), "bias": field(params.get("bias"))}
        if self.layer == "RMSNorm":
            del state["bias"]
        if self.layer in BATCHNORMS or self.layer in INSTANCENORMS:
            state["running_mean"] = field(stats.get("mean"))
            state["running_var"] = field(stats.get("var"))
        return state

    def load_state(self, values: dict) -> None:
        """Set parameters and statistics, each in the dtype flax's init gave it."""
        where = {"weight": ("params", "scale"), "bias": ("params", "bias"),
                 "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}
        for name, value in values.items():
            if name not in where or where[name][1] not in self.variables[where[name][0]]:
                raise ValueError(f"this {self.layer} layer has no {name}")
            collection, key = where[name]
            target = self.variables[collection][key]
            rounded = np.asarray(value).astype(self.np_dtype)
            self.variables[collection] = {**self.variables[collection],
                                          key: jnp.asarray(rounded.astype(target.dtype).reshape(target.shape))}
