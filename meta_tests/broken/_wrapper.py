"""The one piece the broken backends share: a reference layer with a method or two
overridden by a subclass, everything else (reads and writes) passed through."""

from nnconform.backends.reference_backend import ReferenceBackend


class LayerWrapper:
    def __init__(self, layer):
        object.__setattr__(self, "_layer", layer)

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def __setattr__(self, name, value):
        setattr(self._layer, name, value)


class WrappingBackend(ReferenceBackend):
    """The reference backend with the layers named in ``wrappers`` wrapped by the
    given LayerWrapper subclass; other layers are the reference's own."""
    wrappers: dict = {}

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        wrapper = self.wrappers.get(layer)
        return wrapper(built) if wrapper else built
