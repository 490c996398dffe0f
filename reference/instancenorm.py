"""Instance normalization of an (N, C, *spatial) or unbatched (C, *spatial) input, in float64.

InstanceNorm1d/2d/3d have 1/2/3 spatial axes; an input with one axis fewer is one
unbatched sample, normalized as a batch of one. The input rank alone cannot tell
InstanceNorm1d's batched (N, C, L) from InstanceNorm2d's unbatched (C, H, W), so each
layer has its own entry points: step1d/backward1d, step2d/backward2d, step3d/backward3d.

Instance statistics are taken per (sample, channel) over the spatial axes, M =
prod(spatial) values: mean = sum(x) / M, var = sum((x - mean)^2) / M (biased), and
    y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c],
weight absent when not affine, bias absent when not affine or bias=False.

With track_running_stats=False instance statistics are used in both modes. With
track_running_stats=True instance statistics are used in train mode and the running
statistics (per channel) in eval mode. Torch documents only the update rule
running = (1 - momentum) * running + momentum * observed; the rest below is torch
2.13's rule, read from its source (aten instance_norm, which runs batch norm on the
input viewed as (1, N*C, *spatial) and averages the N updated copies):
  - observed = the mean over the N samples of the instance means, and for running_var
    the mean over the N samples of the unbiased instance variances var * M / (M - 1);
  - momentum=None (outside the documented float domain) is momentum 0: the running
    statistics never change;
  - num_batches_tracked exists but is never incremented.
Under the spec's convention running_var = "biased" (specs/instancenorm.toml), the
observed running_var is the mean of the biased instance variances instead.
Eval mode never changes the state.

Gradients, with xhat = (x - mean) * inv_std and g = grad * weight[c] (g = grad
without weight): through instance statistics, d input = inv_std * (g - mean_sp(g) -
xhat * mean_sp(g * xhat)) over each instance's spatial axes; with running statistics
(eval, tracked) they are constants and d input = g * inv_std. d weight[c] = sum over
samples and positions of grad * xhat, d bias[c] = sum of grad.

Errors (ValueError): an input of the wrong rank; axis C not num_features when the
layer has per-channel state (affine or tracked; torch only warns otherwise, and so
the reference accepts it); a single spatial element (M = 1) in train mode.
"""

from __future__ import annotations

import numpy as np

from nnconform.reference.batchnorm import per_channel
from nnconform.reference.standardize import inverse_std, moments, standardize_backward


def initial_state(params: dict) -> dict:
    """running_mean zeros, running_var ones, num_batches_tracked 0 when tracked; weight
    ones and bias zeros when affine; None where absent."""
    channels, tracked, affine = params["num_features"], params["track_running_stats"], params["affine"]
    return {"running_mean": np.zeros(channels) if tracked else None,
            "running_var": np.ones(channels) if tracked else None,
            "num_batches_tracked": 0 if tracked else None,
            "weight": np.ones(channels) if affine else None,
            "bias": np.zeros(channels) if affine and params.get("bias", True) else None}


def _prepared(x, state, params, training, spatial_dims):
    """x as a float64 batch, whether it was unbatched, the statistics used and whether
    they are instance statistics."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (spatial_dims + 1, spatial_dims + 2):
        raise ValueError(f"InstanceNorm{spatial_dims}d expects a {spatial_dims + 1}D (unbatched) or "
                         f"{spatial_dims + 2}D input, got shape {x.shape}")
    unbatched = x.ndim == spatial_dims + 1
    batch = x[np.newaxis] if unbatched else x
    tracked = state.get("running_mean") is not None
    if batch.shape[1] != params["num_features"] and (tracked or state.get("weight") is not None):
        raise ValueError(f"expected {params['num_features']} channels (num_features) on axis "
                         f"{0 if unbatched else 1}, got shape {x.shape}")
    axes = tuple(range(2, batch.ndim))
    instance = training or not tracked
    if instance:
        if training and int(np.prod(batch.shape[2:])) <= 1:
            raise ValueError(f"expected more than 1 spatial element when training, got input shape {x.shape}")
        with np.errstate(invalid="ignore"):  # an empty batch: empty statistics
            mean, var = moments(batch, axes)
    else:
        mean, var = per_channel(state["running_mean"], batch.ndim), per_channel(state["running_var"], batch.ndim)
    return batch, unbatched, axes, mean, var, instance


def _step(x, state, params, training, spatial_dims, conventions=None):
    batch, unbatched, axes, mean, var, _ = _prepared(x, state, params, training, spatial_dims)
    y = (batch - mean) * inverse_std(var, params["eps"])
    if state.get("weight") is not None:
        y = y * per_channel(state["weight"], batch.ndim)
    if state.get("bias") is not None:
        y = y + per_channel(state["bias"], batch.ndim)
    state = dict(state)
    momentum = params["momentum"]
    if training and state.get("running_mean") is not None and momentum is not None:
        count = int(np.prod(batch.shape[2:]))
        observed_mean = mean.reshape(batch.shape[:2]).mean(axis=0)
        bessel = 1.0 if (conventions or {}).get("running_var") == "biased" else count / (count - 1)
        observed_var = (var.reshape(batch.shape[:2]) * bessel).mean(axis=0)
        state["running_mean"] = (1 - momentum) * state["running_mean"] + momentum * observed_mean
        state["running_var"] = (1 - momentum) * state["running_var"] + momentum * observed_var
    return (y[0] if unbatched else y), state


def _backward(x, state, params, training, grad_output, spatial_dims):
    batch, unbatched, axes, mean, var, instance = _prepared(x, state, params, training, spatial_dims)
    grad = np.asarray(grad_output, dtype=np.float64).reshape(batch.shape)
    inv_std = inverse_std(var, params["eps"])
    xhat = (batch - mean) * inv_std
    weight, bias = state.get("weight"), state.get("bias")
    g = grad if weight is None else grad * per_channel(weight, batch.ndim)
    d_input = standardize_backward(g, xhat, inv_std, axes) if instance else g * inv_std
    channel_sum = (0,) + axes
    return {"input": d_input[0] if unbatched else d_input,
            "weight": None if weight is None else (grad * xhat).sum(axis=channel_sum),
            "bias": None if bias is None else grad.sum(axis=channel_sum)}


def step1d(x, state: dict, params: dict, training: bool, dtype: str | None = None,
           conventions: dict | None = None):
    """InstanceNorm1d: input (N, C, L) or (C, L). Returns the output and the state after the call."""
    return _step(x, state, params, training, 1, conventions)


def step2d(x, state: dict, params: dict, training: bool, dtype: str | None = None,
           conventions: dict | None = None):
    """InstanceNorm2d: input (N, C, H, W) or (C, H, W). Returns the output and the state after the call."""
    return _step(x, state, params, training, 2, conventions)


def step3d(x, state: dict, params: dict, training: bool, dtype: str | None = None,
           conventions: dict | None = None):
    """InstanceNorm3d: input (N, C, D, H, W) or (C, D, H, W). Returns the output and the state after the call."""
    return _step(x, state, params, training, 3, conventions)


def backward1d(x, state: dict, params: dict, training: bool, grad_output, dtype: str | None = None) -> dict:
    """Gradients of one InstanceNorm1d forward call from ``state``."""
    return _backward(x, state, params, training, grad_output, 1)


def backward2d(x, state: dict, params: dict, training: bool, grad_output, dtype: str | None = None) -> dict:
    """Gradients of one InstanceNorm2d forward call from ``state``."""
    return _backward(x, state, params, training, grad_output, 2)


def backward3d(x, state: dict, params: dict, training: bool, grad_output, dtype: str | None = None) -> dict:
    """Gradients of one InstanceNorm3d forward call from ``state``."""
    return _backward(x, state, params, training, grad_output, 3)
