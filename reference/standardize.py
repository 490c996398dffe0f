"""Standardization over a set of axes and its gradient: the shared core of layer,
group and instance normalization (batch normalization keeps its own, in batchnorm.py).

With M values per statistic, mean = sum(x) / M, var = sum((x - mean)^2) / M (biased),
inv_std = 1 / sqrt(var + eps) and xhat = (x - mean) * inv_std. When mean and var are
taken from x itself, the gradient of a loss with respect to x, given g = dL/dxhat, is
    dL/dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)),
the means over the same axes; with mean and var held constant it is g * inv_std.
"""

from __future__ import annotations

import numpy as np


def moments(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance over ``axes``, kept as size-1 axes for broadcasting."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return mean, var


def inverse_std(var: np.ndarray, eps: float) -> np.ndarray:
    """1 / sqrt(var + eps); NaN where var + eps < 0 (a negative eps), as the formula gives."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 / np.sqrt(var + eps)


def standardize_backward(g: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray,
                         axes: tuple[int, ...]) -> np.ndarray:
    """dL/dx through statistics taken from x over ``axes``, given g = dL/dxhat."""
    return inv_std * (g - g.mean(axis=axes, keepdims=True)
                      - xhat * (g * xhat).mean(axis=axes, keepdims=True))

