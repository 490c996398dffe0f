"""Dropout that writes its output into the caller's array even with inplace=False."""

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend


class _Mutating(LayerWrapper):
    def forward(self, x):
        out = self._layer.forward(x)
        x[...] = out
        return out


class Backend(WrappingBackend):
    name = "mutating"
    wrappers = {"Dropout": _Mutating}
