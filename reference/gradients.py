"""Gradients of the reference layers, in float64, derived by hand from the forward
definitions in batchnorm.py and dropout.py.

Each takes what the forward call took (the input, the state before the call, the
parameters and the mode, or the mask) and the gradient of the loss with respect to
the output, and returns ``{"input": ..., "weight": ..., "bias": ...}`` with None
where the layer has no such parameter.
"""

from __future__ import annotations

import numpy as np

from nnconform.reference.batchnorm import batch_statistics, per_channel


def batchnorm_backward(x: np.ndarray, state: dict, params: dict, training: bool,
                       grad_output: np.ndarray, dtype: str | None = None) -> dict:
    """Gradients of one batch-norm forward call (``dtype`` is accepted for the common
    reference protocol and not needed).

    With batch statistics (train mode, or no running statistics) the mean and the
    variance depend on the input, so with xhat = (x - mean) * inv_std, g = grad * weight
    and M values per channel:
        d input = inv_std * (g - mean_c(g) - xhat * mean_c(g * xhat)).
    With running statistics (eval mode) they are constants: d input = g * inv_std.
    In both, d weight = sum_c(grad * xhat) and d bias = sum_c(grad).
    """
    x = np.asarray(x, dtype=np.float64)
    grad = np.asarray(grad_output, dtype=np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    batch_stats = training or state["running_mean"] is None
    if batch_stats:
        mean, var, _ = batch_statistics(x)
    else:
        mean, var = state["running_mean"], state["running_var"]
    inv_std = per_channel(1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + params["eps"]), x.ndim)
    xhat = (x - per_channel(mean, x.ndim)) * inv_std
    weight = state["weight"]
    g = grad if weight is None else grad * per_channel(weight, x.ndim)
    if batch_stats:
        d_input = inv_std * (g - g.mean(axis=axes, keepdims=True)
                             - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    else:
        d_input = g * inv_std
    return {"input": d_input,
            "weight": (grad * xhat).sum(axis=axes) if weight is not None else None,
            "bias": grad.sum(axis=axes) if state.get("bias") is not None else None}


def dropout_backward(keep: np.ndarray, p: float, grad_output: np.ndarray) -> dict:
    """Train-mode dropout is x * keep / (1-p), so d input = grad * keep / (1-p), and
    zero at p = 1, where every unit is dropped."""
    grad = np.asarray(grad_output, dtype=np.float64)
    d_input = np.zeros_like(grad) if p >= 1.0 else np.where(keep, grad / (1.0 - p), 0.0)
    return {"input": d_input, "weight": None, "bias": None}
