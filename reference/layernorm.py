"""Layer normalization over the trailing dimensions, in float64.

With D = len(normalized_shape), the input has shape (*, *normalized_shape) (any
number of leading axes, none included) and each statistic is taken over the last D
axes, M = prod(normalized_shape) values:
    mean = sum(x) / M,   var = sum((x - mean)^2) / M   (biased),
    y = (x - mean) / sqrt(var + eps) * weight + bias,
weight and bias of shape normalized_shape (elementwise), weight absent when not
elementwise_affine, bias absent when not elementwise_affine or bias=False. The layer
has no running state and behaves the same in train and eval mode.

Gradients, with xhat = (x - mean) * inv_std and g = grad * weight (g = grad without
weight): d input = inv_std * (g - mean_D(g) - xhat * mean_D(g * xhat)), d weight =
sum over the leading axes of grad * xhat, d bias = sum over the leading axes of grad.

Errors (ValueError): an empty normalized_shape; an input whose trailing shape is not
normalized_shape.
"""

from __future__ import annotations

import numpy as np

from nnconform.reference.standardize import inverse_std, moments, standardize_backward


def normalized_shape_of(params: dict) -> tuple[int, ...]:
    """normalized_shape as a tuple; an int means a 1-tuple, as torch's constructors take it."""
    shape = params["normalized_shape"]
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    if not shape:
        raise ValueError("normalized_shape must have at least one dimension, got ()")
    return shape


def trailing_axes(x: np.ndarray, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The last len(shape) axes of x, after checking that x ends with ``shape``."""
    if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(f"expected an input of shape (*, {', '.join(map(str, shape))}) for "
                         f"normalized_shape={shape}, got shape {x.shape}")
    return tuple(range(x.ndim - len(shape), x.ndim))


def initial_state(params: dict) -> dict:
    """weight ones and bias zeros of shape normalized_shape; None where absent."""
    shape = normalized_shape_of(params)
    affine = params.get("elementwise_affine", True)
    return {"weight": np.ones(shape) if affine else None,
            "bias": np.zeros(shape) if affine and params.get("bias", True) else None}


def _standardized(x, params):
    x = np.asarray(x, dtype=np.float64)
    axes = trailing_axes(x, normalized_shape_of(params))
    with np.errstate(invalid="ignore"):  # an empty normalized_shape axis: empty output
        mean, var = moments(x, axes)
    inv_std = inverse_std(var, params["eps"])
    return x, axes, (x - mean) * inv_std, inv_std


def step(x, state: dict, params: dict, training: bool, dtype: str | None = None) -> tuple[np.ndarray, dict]:
    """One forward call; the same in both modes. Returns the output and an unchanged copy of the state."""
    _, _, xhat, _ = _standardized(x, params)
    y = xhat
    if state.get("weight") is not None:
        y = y * state["weight"]
    if state.get("bias") is not None:
        y = y + state["bias"]
    return y, dict(state)


def backward(x, state: dict, params: dict, training: bool, grad_output,
             dtype: str | None = None) -> dict:
    """Gradients of one forward call with respect to input, weight and bias."""
    x, axes, xhat, inv_std = _standardized(x, params)
    grad = np.asarray(grad_output, dtype=np.float64)
    leading = tuple(range(x.ndim - len(axes)))
    weight, bias = state.get("weight"), state.get("bias")
    g = grad if weight is None else grad * weight
    return {"input": standardize_backward(g, xhat, inv_std, axes),
            "weight": None if weight is None else (grad * xhat).sum(axis=leading),
            "bias": None if bias is None else grad.sum(axis=leading)}
