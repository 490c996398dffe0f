"""forward raises RuntimeError for BatchNorm3d only; every other layer works."""

from nnconform.backends.reference_backend import ReferenceBackend


class _Raising:
    def __init__(self, layer):
        self._layer = layer

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def forward(self, x):
        raise RuntimeError("3-d kernels are not implemented yet")


class Backend(ReferenceBackend):
    name = "raising"

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        return _Raising(built) if layer == "BatchNorm3d" else built
