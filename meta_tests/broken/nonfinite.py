"""Non-finite outputs: Dropout writes NaN where it should write 0 (so a NaN is
neither dropped nor kept), and batch norm puts inf into the last channel."""

import numpy as np

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend


class _NaNForZero(LayerWrapper):
    def forward(self, x):
        out = self._layer.forward(x)
        return np.where(out.astype(np.float64) == 0, np.nan, out).astype(out.dtype)


class _InfLastChannel(LayerWrapper):
    def forward(self, x):
        out = self._layer.forward(x).copy()
        out[:, -1] = np.inf
        return out


class Backend(WrappingBackend):
    name = "nonfinite"
    wrappers = {"Dropout": _NaNForZero, "BatchNorm1d": _InfLastChannel, "BatchNorm2d": _InfLastChannel,
                "BatchNorm3d": _InfLastChannel}
