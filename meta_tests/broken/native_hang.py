"""forward hangs for BatchNorm2d where the SIGALRM of --clause-timeout cannot reach
it, as a hang inside native code would: the signal is blocked, then it sleeps."""

import signal
import time

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend

HANG_SECONDS = 600


class _NativeHang(LayerWrapper):
    def forward(self, x):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(HANG_SECONDS)
        return self._layer.forward(x)


class Backend(WrappingBackend):
    name = "native-hang"
    wrappers = {"BatchNorm2d": _NativeHang}
