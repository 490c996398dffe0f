"""forward raises RuntimeError for BatchNorm3d only; every other layer works."""

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend


class _Raising(LayerWrapper):
    def forward(self, x):
        raise RuntimeError("3-d kernels are not implemented yet")


class Backend(WrappingBackend):
    name = "raising"
    wrappers = {"BatchNorm3d": _Raising}
