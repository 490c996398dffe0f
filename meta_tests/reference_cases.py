"""Hypothesis draws of small cases for every deterministic reference layer, shared by
the reference's independent checks (test_reference_fd, _forward, _torch).

A case is one forward call: the layer, its constructor parameters (by torch's names),
the input shape, the state before the call (parameters and buffers drawn, not left at
their initial values) and the mode. The input values are drawn by each test, in the
domain its tolerance is derived for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnconform.reference import batchnorm_backward, batchnorm_step, groupnorm, instancenorm, layernorm, rmsnorm

# layer -> (step, backward): the functions a spec file names by module:function path.
LAYERS = {
    "BatchNorm1d": (batchnorm_step, batchnorm_backward),
    "BatchNorm2d": (batchnorm_step, batchnorm_backward),
    "BatchNorm3d": (batchnorm_step, batchnorm_backward),
    "InstanceNorm1d": (instancenorm.step1d, instancenorm.backward1d),
    "InstanceNorm2d": (instancenorm.step2d, instancenorm.backward2d),
    "InstanceNorm3d": (instancenorm.step3d, instancenorm.backward3d),
    "LayerNorm": (layernorm.step, layernorm.backward),
    "RMSNorm": (rmsnorm.step, rmsnorm.backward),
    "GroupNorm": (groupnorm.step, groupnorm.backward),
}
RUNNING = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Case:
    layer: str
    params: dict
    shape: tuple
    state: dict
    training: bool
    dtype: str = "float64"

    def step(self, x, state=None, training=None):
        step = LAYERS[self.layer][0]
        return step(x, self.state if state is None else state, self.params,
                    self.training if training is None else training, self.dtype)

    def backward(self, x, grad_output):
        return LAYERS[self.layer][1](x, self.state, self.params, self.training, grad_output, self.dtype)


def _array(draw, shape, low, high, label):
    return draw(hnp.arrays(np.float64, shape, elements=st.floats(low, high)), label=label)


def _per_channel_state(draw, channels, affine, bias, tracked):
    """Weight and bias in [-2, 2], running mean in [-3, 3] and running variance in [0.1, 3]."""
    return {"weight": _array(draw, (channels,), -2, 2, "weight") if affine else None,
            "bias": _array(draw, (channels,), -2, 2, "bias") if affine and bias else None,
            "running_mean": _array(draw, (channels,), -3, 3, "running_mean") if tracked else None,
            "running_var": _array(draw, (channels,), 0.1, 3, "running_var") if tracked else None,
            "num_batches_tracked": draw(st.integers(0, 5), label="num_batches_tracked") if tracked else None}


@st.composite
def cases(draw, layer, *, training, eps, tracked=None, batched=None, torch_domain=False):
    """A Case of ``layer`` in the given mode; ``tracked`` and ``batched`` fixed when given.

    torch_domain leaves out the inputs on which torch raises where the reference
    computes (reported findings): GroupNorm with N * C/G * positions == 1, and
    BatchNorm and InstanceNorm in eval mode without running statistics on a single
    value per channel (per instance).
    """
    side = st.integers(1, 3)
    if layer in RUNNING:
        spatial_dims = int(layer[-2])
        tracked = draw(st.booleans(), label="track_running_stats") if tracked is None else tracked
        affine, bias = draw(st.booleans(), label="affine"), draw(st.booleans(), label="bias")
        channels = draw(side, label="C")
        params = {"num_features": channels, "eps": draw(eps, label="eps"), "affine": affine, "bias": bias,
                  "momentum": draw(st.none() | st.floats(0.0, 1.0), label="momentum"),
                  "track_running_stats": tracked}
        state = _per_channel_state(draw, channels, affine, bias, tracked)
        if layer.startswith("BatchNorm"):
            spatial = tuple(draw(st.lists(side, min_size=0 if spatial_dims == 1 else spatial_dims,
                                          max_size=spatial_dims), label="spatial"))
            shape = (draw(side, label="N"), channels) + spatial
            if (training or (torch_domain and not tracked)) and shape[0] * int(np.prod(spatial)) < 2:
                shape = (2,) + shape[1:]
        else:
            spatial = tuple(draw(st.lists(side, min_size=spatial_dims, max_size=spatial_dims), label="spatial"))
            if (training or (torch_domain and not tracked)) and np.prod(spatial) < 2:
                spatial = (2,) + spatial[1:]
            batched = draw(st.booleans(), label="batched") if batched is None else batched
            shape = ((draw(side, label="N"),) if batched else ()) + (channels,) + spatial
        return Case(layer, params, shape, state, training)
    if layer == "GroupNorm":
        groups, per_group = draw(side, label="num_groups"), draw(side, label="channels per group")
        affine, bias = draw(st.booleans(), label="affine"), draw(st.booleans(), label="bias")
        channels = groups * per_group
        params = {"num_groups": groups, "num_channels": channels, "eps": draw(eps, label="eps"),
                  "affine": affine, "bias": bias}
        spatial = tuple(draw(st.lists(side, max_size=2), label="spatial"))
        shape = (draw(side, label="N"), channels) + spatial
        if torch_domain and shape[0] * per_group * int(np.prod(spatial)) == 1:
            shape = (2,) + shape[1:]
        state = _per_channel_state(draw, channels, affine, bias, tracked=False)
        return Case(layer, params, shape, {"weight": state["weight"], "bias": state["bias"]}, training)
    normalized = tuple(draw(st.lists(side, min_size=1, max_size=2), label="normalized_shape"))
    leading = tuple(draw(st.lists(side, max_size=2), label="leading shape"))
    affine = draw(st.booleans(), label="elementwise_affine")
    weight = _array(draw, normalized, -2, 2, "weight") if affine else None
    if layer == "LayerNorm":
        bias = draw(st.booleans(), label="bias")
        params = {"normalized_shape": normalized, "eps": draw(eps, label="eps"), "elementwise_affine": affine,
                  "bias": bias}
        state = {"weight": weight, "bias": _array(draw, normalized, -2, 2, "bias") if affine and bias else None}
        return Case(layer, params, leading + normalized, state, training)
    params = {"normalized_shape": normalized, "eps": draw(eps, label="eps"), "elementwise_affine": affine}
    return Case(layer, params, leading + normalized, {"weight": weight, "bias": None}, training,
                draw(st.sampled_from(DTYPES), label="dtype") if params["eps"] is None else "float64")


def variants():
    """(layer, training, tracked, batched) for every layer, mode, tracking and batching
    the reference distinguishes: pytest parameters, so each is covered whatever is drawn."""
    for layer in LAYERS:
        for training in (True, False):
            if layer.startswith("InstanceNorm"):
                yield from ((layer, training, tracked, batched) for tracked in (True, False)
                            for batched in (True, False))
            elif layer.startswith("BatchNorm"):
                yield from ((layer, training, tracked, None) for tracked in (True, False))
            else:
                yield layer, training, None, None


def variant_id(variant) -> str:
    layer, training, tracked, batched = variant
    words = [layer, "train" if training else "eval"]
    words += [] if tracked is None else ["tracked" if tracked else "untracked"]
    words += [] if batched is None else ["batched" if batched else "unbatched"]
    return "-".join(words)


def fixed_train_case(layer: str, eps: float | None = 0.05, dtype: str = "float64") -> Case:
    """A fixed train-mode case of LayerNorm, RMSNorm, GroupNorm or InstanceNorm2d (untracked),
    affine, with several values per statistic: the subject of the fault tests."""
    rng = np.random.default_rng(7)
    if layer == "GroupNorm":
        params = {"num_groups": 2, "num_channels": 4, "eps": eps, "affine": True}
        return Case(layer, params, (2, 4, 3), {"weight": rng.uniform(-2, 2, 4), "bias": rng.uniform(-2, 2, 4)}, True)
    if layer == "InstanceNorm2d":
        params = {"num_features": 3, "eps": eps, "momentum": 0.1, "affine": True, "track_running_stats": False}
        state = {"weight": rng.uniform(-2, 2, 3), "bias": rng.uniform(-2, 2, 3), "running_mean": None,
                 "running_var": None, "num_batches_tracked": None}
        return Case(layer, params, (2, 3, 2, 2), state, True)
    params = {"normalized_shape": (2, 3), "eps": eps, "elementwise_affine": True}
    bias = rng.uniform(-2, 2, (2, 3)) if layer == "LayerNorm" else None
    return Case(layer, params, (3, 2, 3), {"weight": rng.uniform(-2, 2, (2, 3)), "bias": bias}, True, dtype)
