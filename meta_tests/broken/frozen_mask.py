"""Dropout that draws one mask per input shape and p, keeps it in hidden backend-wide
state and reuses it on every later call: a frozen random stream. Each single mask
is a fair draw, so only a clause that compares calls can see it."""

import numpy as np

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend
from nnconform.reference import dropout_forward

_MASKS = {}


class _FrozenMask(LayerWrapper):
    def forward(self, x):
        layer = self._layer
        if not layer.training or layer.inplace:
            return layer.forward(x)
        key = (x.shape, layer.rate)
        if key not in _MASKS:
            _MASKS[key] = layer._backend._rng.random(x.shape) >= layer.rate
        return dropout_forward(x.astype(np.float64), _MASKS[key], layer.rate).astype(x.dtype)


class Backend(WrappingBackend):
    name = "frozen-mask"
    wrappers = {"Dropout": _FrozenMask}
