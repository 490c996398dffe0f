"""The float64 reference as a backend, so the whole suite can be run against the oracle.

It builds every layer of the loaded spec set from the layer's family: a deterministic
layer runs its family's reference step function; a random layer applies the family's
[random] formulas to a mask drawn per unit. Parameters outside the family's declared
domain raise ValueError when the layer is built.
"""

from __future__ import annotations

import math

import numpy as np

from nnconform.backend_api import Capabilities
from nnconform.dtypes import numpy_dtype
from nnconform.spec import load_specs


def _layers(specs) -> frozenset:
    return frozenset(layer for clause in specs.clauses for layer in clause.layers)


class ReferenceBackend:
    name = "reference"
    version = "float64 numpy reference"
    # The layers of the suite's own specs; use_specs widens it to the run's spec set.
    capabilities = Capabilities(layers=_layers(load_specs()), autograd=True)

    def __init__(self, specs=None):
        self._rng = np.random.default_rng()
        self.use_specs(specs or load_specs())

    def use_specs(self, specs) -> None:
        """Build the layers of this spec set (the plugin calls it with the run's specs)."""
        self._families = {layer: clause.model for clause in specs.clauses for layer in clause.layers}
        self._ranks = {layer: clause.layer_ranks[layer] for clause in specs.clauses for layer in clause.layers}
        self.capabilities = Capabilities(layers=_layers(specs), autograd=True)

    def seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def build(self, layer: str, params: dict, dtype: str):
        family = self._families.get(layer)
        if family is None:
            raise ValueError(f"reference backend has no layer {layer!r}")
        _validate(family, params)
        if family.random is not None:
            return _RandomLayer(family, params, self, self._ranks[layer])
        return _StepLayer(family, layer, params, numpy_dtype(dtype), dtype)


def _validate(family, params: dict) -> None:
    for name, (low, high, divides) in family.bounds.items():
        value = params.get(name)
        if value is None or isinstance(value, (bool, tuple, list)):
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
        if divides is not None and (value <= 0 or params[divides] % value):
            raise ValueError(f"{divides}={params[divides]!r} must be divisible by {name}={value!r}")


class _RandomLayer:
    trainable = frozenset()

    def __init__(self, family, params: dict, backend: ReferenceBackend, ranks: tuple[int, int]):
        self.family, self.params, self.training, self._backend = family, params, True, backend
        self.ranks = ranks
        self.rate = float(params[family.random.rate])
        self.inplace = bool(params.get("inplace", False))
        names = {k: float(v) for k, v in params.items() if isinstance(v, (int, float)) and v is not None}
        self.dropped, self.scale, self.shift = family.random.values(names)

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self):
        return {}

    def load_state(self, values):
        if values:
            raise ValueError(f"a random layer has no state, got {sorted(values)}")

    def forward(self, x):
        if not self.training:
            self._last = None
            return x if self.inplace else x.copy()
        batched = self.ranks[0] <= x.ndim <= self.ranks[1]
        axes = self.family.random.unit_axes(x.ndim if batched else x.ndim + 1)
        axes = axes if batched else tuple(a - 1 for a in axes)
        unit_shape = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
        keep = np.broadcast_to(self._backend._rng.random(unit_shape) >= self.rate, x.shape)
        self._last = keep
        kept = self.scale * x.astype(np.float64) + self.shift if math.isfinite(self.scale) else 0.0
        out = np.where(keep, kept, self.dropped).astype(x.dtype)
        if self.inplace:
            x[...] = out
            return x
        return out

    def backward(self, grad_output):
        grad = grad_output.astype(np.float64)
        if self._last is not None:
            grad = np.where(self._last, grad * (self.scale if math.isfinite(self.scale) else 0.0), 0.0)
        return {"input": grad.astype(grad_output.dtype)}


class _StepLayer:
    """A deterministic layer run by its reference step function. Its state is stored
    in the layer's dtype, as a real low-precision layer stores it, and widened to
    float64 for each step."""

    def __init__(self, family, layer: str, params: dict, dtype: np.dtype, dtype_name: str):
        self.family, self.params, self.dtype, self.dtype_name, self.training = family, params, dtype, dtype_name, True
        self._step, self._backward = family.step_for(layer), family.backward_for(layer)
        self._state = family.initial_state(params)
        self.trainable = frozenset(n for n in family.trainable if self._state.get(n) is not None)

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self):
        return {name: (value if value is None or isinstance(value, int) else value.astype(self.dtype))
                for name, value in self._state.items()}

    def load_state(self, values):
        for name, value in values.items():
            if self._state.get(name) is None:
                raise ValueError(f"the layer has no {name} to set")
            self._state[name] = value if isinstance(value, int) else \
                np.asarray(value).astype(self.dtype).astype(np.float64)

    def forward(self, x):
        self._last = (x.astype(np.float64), self._state, self.training)
        y, state = self._step(x.astype(np.float64), self._state, self.params, self.training, self.dtype_name)
        self._state = {name: (value if value is None or isinstance(value, int)
                              else np.asarray(value).astype(self.dtype).astype(np.float64))
                       for name, value in state.items()}
        return y.astype(x.dtype)

    def backward(self, grad_output):
        x, state, training = self._last
        grads = self._backward(x, state, self.params, training, grad_output, self.dtype_name)
        return {name: None if g is None else g.astype(self.dtype) for name, g in grads.items()}
