"""The float64 reference as a backend, so the whole suite can be run against the oracle."""

from __future__ import annotations

import numpy as np

from nnconform.backend_api import Capabilities
from nnconform.dtypes import numpy_dtype
from nnconform.reference import BACKWARDS, INITIAL_STATE, STEPS, dropout_backward, dropout_forward


class ReferenceBackend:
    name = "reference"
    version = "float64 numpy reference"
    capabilities = Capabilities(layers=frozenset(("Dropout",) + tuple(STEPS)), autograd=True)

    def __init__(self):
        self._rng = np.random.default_rng()

    def seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def build(self, layer: str, params: dict, dtype: str):
        if layer == "Dropout":
            if not 0.0 <= params["p"] <= 1.0:
                raise ValueError(f"dropout probability has to be between 0 and 1, but got {params['p']}")
            return _Dropout(params["p"], params.get("inplace", False), self)
        if layer in STEPS:
            return _StepLayer(layer, params, numpy_dtype(dtype))
        raise ValueError(f"reference backend has no layer {layer!r}")


class _Dropout:
    trainable = frozenset()

    def __init__(self, p: float, inplace: bool, backend: ReferenceBackend):
        self.p, self.inplace, self.training, self._backend = p, inplace, True, backend

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self):
        return {}

    def forward(self, x):
        if not self.training:
            self._last = (np.ones(x.shape, dtype=bool), 0.0)
            return x if self.inplace else x.copy()
        keep = self._backend._rng.random(x.shape) >= self.p
        self._last = (keep, self.p)
        out = dropout_forward(x.astype(np.float64), keep, self.p).astype(x.dtype)
        if self.inplace:
            x[...] = out
            return x
        return out

    def backward(self, grad_output):
        keep, p = self._last
        return {name: None if g is None else g.astype(grad_output.dtype)
                for name, g in dropout_backward(keep, p, grad_output).items()}


class _StepLayer:
    """A deterministic layer run by its reference step function. Its state is stored
    in the layer's dtype, as a real low-precision layer stores it, and widened to
    float64 for each step."""
    trainable = frozenset({"weight", "bias"})

    def __init__(self, layer: str, params: dict, dtype: np.dtype):
        self.layer, self.params, self.dtype, self.training = layer, params, dtype, True
        self._step, self._state = STEPS[layer], INITIAL_STATE[layer](params)

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self):
        return {name: (value if value is None or isinstance(value, int) else value.astype(self.dtype))
                for name, value in self._state.items()}

    def forward(self, x):
        self._last = (x.astype(np.float64), self._state, self.training)
        y, state = self._step(x.astype(np.float64), self._state, self.params, self.training)
        self._state = {name: (value if value is None or isinstance(value, int)
                              else value.astype(self.dtype).astype(np.float64))
                       for name, value in state.items()}
        return y.astype(x.dtype)

    def backward(self, grad_output):
        x, state, training = self._last
        grads = BACKWARDS[self.layer](x, state, self.params, training, grad_output)
        return {name: None if g is None else g.astype(self.dtype) for name, g in grads.items()}
