"""forward never returns for BatchNorm2d (it sleeps far longer than any time limit)."""

import time

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend

HANG_SECONDS = 600


class _Hanging(LayerWrapper):
    def forward(self, x):
        time.sleep(HANG_SECONDS)
        return self._layer.forward(x)


class Backend(WrappingBackend):
    name = "hanging"
    wrappers = {"BatchNorm2d": _Hanging}
