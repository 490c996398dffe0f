"""Batch norm that in eval mode keeps updating a hidden copy of the running mean
and normalises with it, while state() still shows the frozen buffers. Only the
eval output can see it."""

import numpy as np

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend
from nnconform.reference import batch_statistics


class _HiddenStats(LayerWrapper):
    def __init__(self, layer):
        super().__init__(layer)
        object.__setattr__(self, "_hidden", {})

    def forward(self, x):
        layer = self._layer
        shown = layer._state
        if layer.training or shown["running_mean"] is None:
            return layer.forward(x)
        hidden = self._hidden.setdefault("running_mean", shown["running_mean"].copy())
        self._hidden["running_mean"] = 0.5 * hidden + 0.5 * batch_statistics(x.astype(np.float64))[0]
        layer._state = {**shown, "running_mean": self._hidden["running_mean"]}
        try:
            return layer.forward(x)
        finally:
            layer._state = shown


class Backend(WrappingBackend):
    name = "hidden-stats"
    wrappers = {name: _HiddenStats for name in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")}
