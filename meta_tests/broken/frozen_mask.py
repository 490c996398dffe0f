"""Dropout that draws one mask per input shape, keeps it in hidden backend-wide
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
        if x.shape not in _MASKS:
            _MASKS[x.shape] = layer._backend._rng.random(x.shape) >= layer.p
        return dropout_forward(x.astype(np.float64), _MASKS[x.shape], layer.p).astype(x.dtype)


class Backend(WrappingBackend):
    name = "frozen-mask"
    wrappers = {"Dropout": _FrozenMask}
