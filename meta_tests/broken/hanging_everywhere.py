"""Every call hangs: seed and build sleep far longer than any time limit, so each
item hangs at its first backend call, whatever its layer or clause."""

import time

from nnconform.backends.reference_backend import ReferenceBackend

HANG_SECONDS = 600


class Backend(ReferenceBackend):
    name = "hanging-everywhere"

    def seed(self, seed):
        time.sleep(HANG_SECONDS)

    def build(self, layer, params, dtype):
        time.sleep(HANG_SECONDS)
        return super().build(layer, params, dtype)
