"""Outputs of the wrong dtype, shape or type, one per layer: Dropout returns float32
whatever the input's dtype, BatchNorm1d a flattened array, BatchNorm2d a Python list
and BatchNorm3d a torch tensor."""

import numpy as np

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend


class _Float32(LayerWrapper):
    def forward(self, x):
        return self._layer.forward(x).astype(np.float32)


class _Flattened(LayerWrapper):
    def forward(self, x):
        return self._layer.forward(x).reshape(-1)


class _List(LayerWrapper):
    def forward(self, x):
        return self._layer.forward(x).tolist()


class _TorchTensor(LayerWrapper):
    def forward(self, x):
        import torch
        return torch.from_numpy(self._layer.forward(x).astype(np.float64))


class Backend(WrappingBackend):
    name = "wrong-output"
    wrappers = {"Dropout": _Float32, "BatchNorm1d": _Flattened, "BatchNorm2d": _List, "BatchNorm3d": _TorchTensor}
