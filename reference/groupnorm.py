"""Group normalization of an (N, C, *) input, in float64.

The C = num_channels channels are split into G = num_groups consecutive groups of C/G
channels. Each statistic is taken per (sample, group) over the group's channels and
every spatial position, M = (C/G) * prod(spatial) values:
    mean = sum(x) / M,   var = sum((x - mean)^2) / M   (biased),
    y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c],
weight and bias per channel (size C), weight absent when not affine, bias absent when
not affine or bias=False. The layer has no running state and behaves the same in
train and eval mode. A group of a single value (M = 1) has var = 0, so y = bias[c]
(zero without bias): nothing is undefined, so nothing is raised.

Gradients, with xhat = (x - mean) * inv_std and g = grad * weight[c] (g = grad
without weight): d input = inv_std * (g - mean_group(g) - xhat * mean_group(g * xhat)),
d weight[c] = sum over samples and positions of grad * xhat, d bias[c] = sum of grad.

Errors (ValueError): num_groups < 1, num_channels not divisible by num_groups, an input
of fewer than 2 dimensions or whose axis 1 is not num_channels.
"""

from __future__ import annotations

import numpy as np

from nnconform.reference.batchnorm import per_channel
from nnconform.reference.standardize import inverse_std, moments, standardize_backward


def check_params(params: dict) -> tuple[int, int]:
    """(num_groups, num_channels), after the constraints between them."""
    groups, channels = params["num_groups"], params["num_channels"]
    if groups < 1:
        raise ValueError(f"num_groups must be at least 1, got {groups}")
    if channels % groups:
        raise ValueError(f"num_channels ({channels}) must be divisible by num_groups ({groups})")
    return groups, channels


def initial_state(params: dict) -> dict:
    """weight ones and bias zeros per channel; None where absent."""
    _, channels = check_params(params)
    affine = params.get("affine", True)
    return {"weight": np.ones(channels) if affine else None,
            "bias": np.zeros(channels) if affine and params.get("bias", True) else None}


def _grouped(x, params):
    """x as float64, and x viewed as (N, G, C/G, *spatial) with the axes of one group's statistic."""
    groups, channels = check_params(params)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[1] != channels:
        raise ValueError(f"expected an input of shape (N, {channels}, *) for num_channels={channels}, "
                         f"got shape {x.shape}")
    grouped = x.reshape((x.shape[0], groups, channels // groups) + x.shape[2:])
    return x, grouped, tuple(range(2, grouped.ndim))


def _standardized(x, params):
    x, grouped, axes = _grouped(x, params)
    mean, var = moments(grouped, axes)
    inv_std = inverse_std(var, params["eps"])
    return x, (grouped - mean) * inv_std, inv_std, axes


def step(x, state: dict, params: dict, training: bool, dtype: str | None = None) -> tuple[np.ndarray, dict]:
    """One forward call; the same in both modes. Returns the output and an unchanged copy of the state."""
    x, xhat, _, _ = _standardized(x, params)
    y = xhat.reshape(x.shape)
    if state.get("weight") is not None:
        y = y * per_channel(state["weight"], x.ndim)
    if state.get("bias") is not None:
        y = y + per_channel(state["bias"], x.ndim)
    return y, dict(state)


def backward(x, state: dict, params: dict, training: bool, grad_output,
             dtype: str | None = None) -> dict:
    """Gradients of one forward call with respect to input, weight and bias."""
    x, xhat, inv_std, axes = _standardized(x, params)
    grad = np.asarray(grad_output, dtype=np.float64)
    weight, bias = state.get("weight"), state.get("bias")
    g = grad if weight is None else grad * per_channel(weight, x.ndim)
    d_input = standardize_backward(g.reshape(xhat.shape), xhat, inv_std, axes).reshape(x.shape)
    channel_sum = (0,) + tuple(range(2, x.ndim))
    return {"input": d_input,
            "weight": None if weight is None else (grad * xhat.reshape(x.shape)).sum(axis=channel_sum),
            "bias": None if bias is None else grad.sum(axis=channel_sum)}
