"""forward kills the whole process with os.abort() for BatchNorm2d."""

import os

from nnconform.backends.reference_backend import ReferenceBackend


class _Aborting:
    def __init__(self, layer):
        self._layer = layer

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def forward(self, x):
        os.abort()


class Backend(ReferenceBackend):
    name = "aborting"

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        return _Aborting(built) if layer == "BatchNorm2d" else built
