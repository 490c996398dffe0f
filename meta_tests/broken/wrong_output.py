"""Outputs of the wrong shape, dtype or type, one per layer:
Dropout returns float32 for every input dtype, BatchNorm1d a flattened array,
BatchNorm2d a Python list and BatchNorm3d a torch tensor."""

import numpy as np

from nnconform.backends.reference_backend import ReferenceBackend


class _Wrapped:
    def __init__(self, layer, convert):
        self._layer, self._convert = layer, convert

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def forward(self, x):
        return self._convert(self._layer.forward(x))


def _as_torch(out):
    import torch
    return torch.from_numpy(np.asarray(out, dtype=np.float64))


_CONVERT = {
    "Dropout": lambda out: out.astype(np.float32),
    "BatchNorm1d": lambda out: out.reshape(-1),
    "BatchNorm2d": lambda out: out.tolist(),
    "BatchNorm3d": _as_torch,
}


class Backend(ReferenceBackend):
    name = "wrong-output"

    def build(self, layer, params, dtype):
        return _Wrapped(super().build(layer, params, dtype), _CONVERT[layer])
