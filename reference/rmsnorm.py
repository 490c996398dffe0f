"""Root-mean-square normalization over the trailing dimensions, in float64.

With D = len(normalized_shape), the input has shape (*, *normalized_shape) and each
statistic is taken over the last D axes, M = prod(normalized_shape) values:
    rms = sqrt(sum(x^2) / M + eps),   y = x / rms * weight,
weight of shape normalized_shape, absent when not elementwise_affine; there is no
bias and no mean subtraction. eps=None means the machine epsilon of the computation
(opmath) type, as torch 2.13 documents it: float32's (2^-23) for float16, bfloat16
and float32 layers, float64's (2^-52) for float64 layers; so the layer's dtype is
needed. The same in train and eval mode.

Gradients, with r = 1 / rms and g = grad * weight (g = grad without weight):
    d input = r * g - r^3 * x * mean_D(g * x),
(from d r / d x_j = -r^3 x_j / M), d weight = sum over the leading axes of grad * x * r.

Errors (ValueError): an empty normalized_shape, an input whose trailing shape is not
normalized_shape, eps=None with an unknown dtype.
"""

from __future__ import annotations

import numpy as np

from nnconform.reference.layernorm import normalized_shape_of, trailing_axes

# Machine epsilon of the type the computation runs in, per layer dtype (documented by torch 2.13).
OPMATH_EPS = {"float16": float(np.finfo(np.float32).eps), "bfloat16": float(np.finfo(np.float32).eps),
              "float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


def effective_eps(params: dict, dtype: str | None) -> float:
    """params["eps"], or for eps=None the opmath machine epsilon of ``dtype``."""
    if params.get("eps") is not None:
        return params["eps"]
    if dtype not in OPMATH_EPS:
        raise ValueError(f"RMSNorm with eps=None needs the layer dtype, one of {sorted(OPMATH_EPS)}; got {dtype!r}")
    return OPMATH_EPS[dtype]


def initial_state(params: dict) -> dict:
    """weight ones of shape normalized_shape, None when not elementwise_affine; bias always None."""
    shape = normalized_shape_of(params)
    return {"weight": np.ones(shape) if params.get("elementwise_affine", True) else None, "bias": None}


def _inverse_rms(x, params, dtype):
    x = np.asarray(x, dtype=np.float64)
    axes = trailing_axes(x, normalized_shape_of(params))
    with np.errstate(invalid="ignore", divide="ignore"):
        return x, axes, 1.0 / np.sqrt((x * x).mean(axis=axes, keepdims=True) + effective_eps(params, dtype))


def step(x, state: dict, params: dict, training: bool, dtype: str | None = None) -> tuple[np.ndarray, dict]:
    """One forward call; the same in both modes. Returns the output and an unchanged copy of the state."""
    x, _, r = _inverse_rms(x, params, dtype)
    y = x * r
    if state.get("weight") is not None:
        y = y * state["weight"]
    return y, dict(state)


def rms_backward(g: np.ndarray, x: np.ndarray, r: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """dL/dx of x * r, r = 1 / sqrt(mean(x^2 over axes) + eps), given g = dL/d(x * r)."""
    return r * g - r ** 3 * x * (g * x).mean(axis=axes, keepdims=True)


def backward(x, state: dict, params: dict, training: bool, grad_output,
             dtype: str | None = None) -> dict:
    """Gradients of one forward call with respect to input and weight (bias is always None)."""
    x, axes, r = _inverse_rms(x, params, dtype)
    grad = np.asarray(grad_output, dtype=np.float64)
    weight = state.get("weight")
    g = grad if weight is None else grad * weight
    d_input = rms_backward(g, x, r, axes)
    leading = tuple(range(x.ndim - len(axes)))
    return {"input": d_input,
            "weight": None if weight is None else (grad * x * r).sum(axis=leading),
            "bias": None}
