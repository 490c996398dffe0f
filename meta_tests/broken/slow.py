"""Slow, not hung: every Dropout forward call takes 20 ms and then returns the
right result, so an item that makes thousands of calls runs out of time while
each call completes."""

import time

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend

CALL_SECONDS = 0.02


class _Slow(LayerWrapper):
    def forward(self, x):
        time.sleep(CALL_SECONDS)
        return self._layer.forward(x)


class Backend(WrappingBackend):
    name = "slow"
    wrappers = {"Dropout": _Slow}
