"""Dropout that draws one mask per input shape, keeps it in backend-wide hidden
state and reuses it on every later call: a frozen random stream."""

import numpy as np

from nnconform.backends.reference_backend import ReferenceBackend
from nnconform.reference import dropout_forward


class _FrozenMaskDropout:
    trainable = frozenset()

    def __init__(self, p, masks, rng):
        self.p, self.training, self._masks, self._rng = p, True, masks, rng

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self):
        return {}

    def forward(self, x):
        if not self.training:
            return x.copy()
        if x.shape not in self._masks:
            self._masks[x.shape] = self._rng.random(x.shape) >= self.p
        return dropout_forward(x.astype(np.float64), self._masks[x.shape], self.p).astype(x.dtype)


class Backend(ReferenceBackend):
    name = "frozen-mask"

    def __init__(self):
        super().__init__()
        self._masks = {}

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        if layer == "Dropout" and not params.get("inplace", False):
            return _FrozenMaskDropout(params["p"], self._masks, self._rng)
        return built
