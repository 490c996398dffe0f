"""forward kills the whole process with os.abort() for BatchNorm2d, as a segfault
in native code would."""

import os

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend


class _Aborting(LayerWrapper):
    def forward(self, x):
        os.abort()


class Backend(WrappingBackend):
    name = "aborting"
    wrappers = {"BatchNorm2d": _Aborting}
