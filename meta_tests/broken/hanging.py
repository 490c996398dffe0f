"""forward never returns for BatchNorm2d (it sleeps far longer than any time limit)."""

import time

from nnconform.backends.reference_backend import ReferenceBackend

HANG_SECONDS = 600


class _Hanging:
    def __init__(self, layer):
        self._layer = layer

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def forward(self, x):
        time.sleep(HANG_SECONDS)
        return self._layer.forward(x)


class Backend(ReferenceBackend):
    name = "hanging"

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        return _Hanging(built) if layer == "BatchNorm2d" else built
