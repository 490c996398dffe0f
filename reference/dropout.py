"""Dropout given its mask."""

from __future__ import annotations

import numpy as np


def dropout_forward(x: np.ndarray, keep: np.ndarray, p: float) -> np.ndarray:
    """Train-mode dropout: kept units scaled by 1/(1-p), dropped units zero.

    ``keep`` is the boolean mask of kept units. At p=1 every unit is dropped and the
    output is zero, with no NaN from the 0 * inf a naive 1/(1-p) would give.
    """
    x = np.asarray(x, dtype=np.float64)
    if p >= 1.0:
        return np.zeros_like(x)
    return np.where(keep, x / (1.0 - p), 0.0)
