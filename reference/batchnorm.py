"""Batch normalization over axis 1 of an (N, C, ...) input, in float64."""

from __future__ import annotations

import numpy as np


def batchnorm_initial_state(params: dict) -> dict:
    """running_mean zeros, running_var ones, num_batches_tracked 0 (when tracked);
    weight ones and bias zeros (when affine); None where absent."""
    channels, tracked, affine = params["num_features"], params["track_running_stats"], params["affine"]
    return {
        "running_mean": np.zeros(channels) if tracked else None,
        "running_var": np.ones(channels) if tracked else None,
        "num_batches_tracked": 0 if tracked else None,
        "weight": np.ones(channels) if affine else None,
        "bias": np.zeros(channels) if affine else None,
    }


def batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel mean and biased variance over every axis but 1, and the count."""
    axes = (0,) + tuple(range(2, x.ndim))
    count = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    var = ((x - per_channel(mean, x.ndim)) ** 2).mean(axis=axes)
    return mean, var, count


def batchnorm_step(x: np.ndarray, state: dict, params: dict, training: bool, dtype=None,
                   conventions: dict | None = None) -> tuple[np.ndarray, dict]:
    """One forward call from ``state``. Returns the output and the state after it.
    ``dtype`` (the layer's) is accepted for the common reference protocol and not needed.

    Batch statistics are used in training, and in eval mode when there are no
    running statistics. In training with running statistics, num_batches_tracked
    goes up by one and running = (1 - f) * running + f * batch_stat, where f is
    momentum, or 1/num_batches_tracked (a cumulative average) when momentum is None;
    running_var takes the unbiased batch variance.

    Under the spec's named conventions (specs/batchnorm.toml [conventions]):
    running_var = "biased" takes the biased batch variance; momentum = "old-weight"
    makes momentum the weight of the old value, running = m * running + (1 - m) * batch;
    batches_tracked = "absent" keeps no counter.
    """
    conventions = conventions or {}
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"expected an input with a channel axis (N, C, ...), got shape {x.shape}")
    tracked = state["running_mean"] is not None
    if training or not tracked:
        mean, var, count = batch_statistics(x)
        if training and count <= 1:
            raise ValueError(f"expected more than 1 value per channel when training, got input shape {x.shape}")
    else:
        mean, var = state["running_mean"], state["running_var"]
    y = (x - per_channel(mean, x.ndim)) / np.sqrt(per_channel(var, x.ndim) + params["eps"])
    if state["weight"] is not None:
        y = y * per_channel(state["weight"], x.ndim)
    if state.get("bias") is not None:
        y = y + per_channel(state["bias"], x.ndim)
    state = dict(state)
    if training and tracked:
        momentum = params["momentum"]
        if conventions.get("batches_tracked", "counted") == "counted":
            state["num_batches_tracked"] += 1
        elif momentum is None:
            raise ValueError("momentum=None (a cumulative average) needs the batch counter")
        if momentum is None:
            factor = 1.0 / state["num_batches_tracked"]
        else:
            factor = 1 - momentum if conventions.get("momentum") == "old-weight" else momentum
        bessel = 1.0 if conventions.get("running_var") == "biased" else count / (count - 1)
        state["running_mean"] = (1 - factor) * state["running_mean"] + factor * mean
        state["running_var"] = (1 - factor) * state["running_var"] + factor * var * bessel
    return y, state


def per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """Reshape per-channel values to broadcast along axis 1 of an ndim-rank input."""
    return np.reshape(values, (1, -1) + (1,) * (ndim - 2))
