"""A deliberately broken variant of examples/numpy_backend.py, to show what failures
look like (meta_tests/test_example_backend.py checks the messages):

- Dropout forgets to scale the kept units by 1/(1-p);
- BatchNorm normalizes with the unbiased batch variance instead of the biased one.

    python -m pytest --backend examples.broken_numpy_backend:BrokenNumpyBackend
"""

import numpy as np

from examples.numpy_backend import BatchNorm, Dropout, NumpyBackend


class UnscaledDropout(Dropout):
    def forward(self, x):
        out = super().forward(x)
        return np.where(out != 0, x, out) if self.training else out


class UnbiasedBatchNorm(BatchNorm):
    def forward(self, x):
        out = super().forward(x)
        if self.batch_stats:
            count = x.size // x.shape[1]
            out = (out.astype(np.float64) * np.sqrt(count / max(count - 1, 1))).astype(x.dtype)
        return out


class BrokenNumpyBackend(NumpyBackend):
    name = "broken-numpy-example"

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        built.__class__ = UnscaledDropout if layer == "Dropout" else UnbiasedBatchNorm
        return built
