"""The new normalization references on small hand-computed examples, their errors, and
their protocol: step/backward take (x, state, params, training[, grad_output], dtype),
return a new state and never change the one they were given."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nnconform.reference import batchnorm_backward, batchnorm_step, groupnorm, instancenorm, layernorm, rmsnorm
from nnconform.reference.batchnorm import batchnorm_initial_state

# Rows [1, 3] and [10, 12]: means 2 and 11, biased variance 1; with eps = 3, sqrt(var + eps) = 2.
ROWS = np.array([[1.0, 3.0], [10.0, 12.0]])


def layer_params(**overrides):
    return {"normalized_shape": (2,), "eps": 3.0, "elementwise_affine": True, "bias": True, **overrides}


def instance_params(**overrides):
    return {"num_features": 2, "eps": 3.0, "momentum": 0.5, "affine": False, "track_running_stats": True,
            **overrides}


def test_layernorm_normalizes_each_row_over_the_trailing_dims():
    p = layer_params()
    y, _ = layernorm.step(ROWS, layernorm.initial_state(p), p, True, "float32")
    np.testing.assert_allclose(y, [[-0.5, 0.5], [-0.5, 0.5]], rtol=0, atol=1e-15)
    state = {"weight": np.array([2.0, -1.0]), "bias": np.array([0.5, 1.0])}
    y, _ = layernorm.step(ROWS, state, p, False, "float32")
    np.testing.assert_allclose(y, [[-0.5, 0.5], [-0.5, 0.5]], rtol=0, atol=1e-15)
    two = layer_params(normalized_shape=(2, 2))  # both rows together: mean 6.5, var 21.25
    y, _ = layernorm.step(ROWS, layernorm.initial_state(two), two, True, "float64")
    np.testing.assert_allclose(y, (ROWS - 6.5) / np.sqrt(24.25), rtol=1e-15)
    assert layernorm.initial_state(layer_params(bias=False))["bias"] is None
    assert layernorm.initial_state(layer_params(elementwise_affine=False)) == {"weight": None, "bias": None}
    np.testing.assert_array_equal(layernorm.initial_state(layer_params(normalized_shape=3))["weight"], np.ones(3))


def test_rmsnorm_divides_by_the_root_mean_square():
    p = {"normalized_shape": (2,), "eps": 3.5, "elementwise_affine": True}  # mean of [9, 16] + 3.5 = 16
    y, _ = rmsnorm.step(np.array([3.0, 4.0]), {"weight": np.array([2.0, 1.0]), "bias": None}, p, True, "float16")
    np.testing.assert_allclose(y, [1.5, 1.0], rtol=1e-15)
    assert rmsnorm.initial_state({**p, "elementwise_affine": False}) == {"weight": None, "bias": None}


@pytest.mark.parametrize("dtype, eps", [("float16", 2.0 ** -23), ("bfloat16", 2.0 ** -23), ("float32", 2.0 ** -23),
                                        ("float64", 2.0 ** -52)])
def test_rmsnorm_eps_none_is_the_opmath_epsilon(dtype, eps):
    p = {"normalized_shape": (1,), "eps": None, "elementwise_affine": False}
    x = np.array([[2.0 ** -20], [0.0]])  # x^2 = 2^-40, far below either epsilon: y = x / sqrt(eps) nearly
    y, _ = rmsnorm.step(x, rmsnorm.initial_state(p), p, True, dtype)
    np.testing.assert_allclose(y, x / np.sqrt(x ** 2 + eps), rtol=1e-15)
    with pytest.raises(ValueError, match="needs the layer dtype"):
        rmsnorm.step(x, rmsnorm.initial_state(p), p, True, None)


def test_groupnorm_groups_are_consecutive_channels():
    p = {"num_groups": 2, "num_channels": 4, "eps": 3.0, "affine": True}
    x = np.array([[1.0, 3.0, 10.0, 12.0]])  # groups [1, 3] and [10, 12]; interleaved would pair 1 with 10
    y, _ = groupnorm.step(x, groupnorm.initial_state(p), p, True)
    np.testing.assert_allclose(y, [[-0.5, 0.5, -0.5, 0.5]], rtol=0, atol=1e-15)
    single = {"num_groups": 2, "num_channels": 2, "eps": 1e-5, "affine": True}  # one value per group
    y, _ = groupnorm.step(np.array([[5.0, -7.0]]), {"weight": np.ones(2), "bias": np.array([0.25, 3.0])}, single,
                          False)
    np.testing.assert_array_equal(y, [[0.25, 3.0]])
    assert groupnorm.initial_state({**p, "bias": False})["bias"] is None


def test_instancenorm_statistics_are_per_sample_and_channel():
    p = instance_params(track_running_stats=False)
    x = np.array([[[1.0, 3.0], [10.0, 12.0]], [[0.0, 2.0], [-5.0, -3.0]]])
    for training in (True, False):
        y, state = instancenorm.step1d(x, instancenorm.initial_state(p), p, training)
        np.testing.assert_allclose(y, np.tile([-0.5, 0.5], (2, 2, 1)), rtol=0, atol=1e-15)
        assert state["running_mean"] is None and state["num_batches_tracked"] is None
    unbatched, _ = instancenorm.step1d(x[1], instancenorm.initial_state(p), p, True)
    np.testing.assert_allclose(unbatched, np.tile([-0.5, 0.5], (2, 1)), rtol=0, atol=1e-15)
    image = np.arange(8.0).reshape(2, 2, 2)  # InstanceNorm2d: this 3D input is one unbatched (C, H, W) sample
    y2, _ = instancenorm.step2d(image, instancenorm.initial_state(p), p, True)
    y1, _ = instancenorm.step1d(image, instancenorm.initial_state(p), p, True)
    assert not np.allclose(y1, y2)


def test_instancenorm_running_update_averages_instances_and_never_counts():
    """Instance means 2, 11 (sample 0) and 1, -4 (sample 1): observed means 1.5 and 3.5.
    Every instance has 2 values and biased variance 1, so unbiased variance 2."""
    p = instance_params(momentum=0.5)
    x = np.array([[[1.0, 3.0], [10.0, 12.0]], [[0.0, 2.0], [-5.0, -3.0]]])
    state = {**instancenorm.initial_state(p), "num_batches_tracked": 4}
    _, after = instancenorm.step1d(x, state, p, True)
    np.testing.assert_allclose(after["running_mean"], [0.75, 1.75], rtol=1e-15)
    np.testing.assert_allclose(after["running_var"], [1.5, 1.5], rtol=1e-15)
    assert after["num_batches_tracked"] == 4
    y, frozen = instancenorm.step1d(x, after, p, False)  # eval: running statistics, no update
    np.testing.assert_allclose(y, (x - np.array([0.75, 1.75])[:, None]) / np.sqrt(4.5), rtol=1e-15)
    assert frozen["running_mean"] is after["running_mean"] and frozen["running_var"] is after["running_var"]
    _, none = instancenorm.step1d(x, state, instance_params(momentum=None), True)
    np.testing.assert_array_equal(none["running_mean"], [0.0, 0.0])
    np.testing.assert_array_equal(none["running_var"], [1.0, 1.0])


def test_steps_leave_the_given_state_unchanged():
    p = instance_params(affine=True)
    state = {**instancenorm.initial_state(p), "running_mean": np.array([1.0, 2.0])}
    copy = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    _, after = instancenorm.step1d(np.arange(8.0).reshape(2, 2, 2), state, p, True)
    assert after is not state
    for name, value in copy.items():
        np.testing.assert_array_equal(state[name], value)


@pytest.mark.parametrize("call, message", [
    (lambda: layernorm.step(np.ones((2, 3)), {}, layer_params(), True), r"shape \(\*, 2\)"),
    (lambda: layernorm.step(np.ones(2), {}, layer_params(normalized_shape=()), True), "at least one dimension"),
    (lambda: rmsnorm.step(np.ones((3, 2)), {}, {"normalized_shape": (3,), "eps": 1e-5}, True), r"shape \(\*, 3\)"),
    (lambda: groupnorm.initial_state({"num_groups": 2, "num_channels": 5}), r"num_channels \(5\) must be divisible"),
    (lambda: groupnorm.step(np.ones((2, 4)), {}, {"num_groups": 0, "num_channels": 4, "eps": 1e-5}, True),
     "num_groups must be at least 1"),
    (lambda: groupnorm.step(np.ones((2, 6)), {}, {"num_groups": 2, "num_channels": 4, "eps": 1e-5}, True),
     r"\(N, 4, \*\)"),
    (lambda: groupnorm.step(np.ones(4), {}, {"num_groups": 2, "num_channels": 4, "eps": 1e-5}, True),
     r"\(N, 4, \*\)"),
    (lambda: instancenorm.step1d(np.ones((2, 2, 2, 2)), {}, instance_params(), True), "2D .unbatched. or 3D"),
    (lambda: instancenorm.step2d(np.ones((2, 2)), {}, instance_params(), True), "3D .unbatched. or 4D"),
    (lambda: instancenorm.step1d(np.ones((2, 3, 4)), instancenorm.initial_state(instance_params()),
                                 instance_params(), False), "expected 2 channels"),
    (lambda: instancenorm.step1d(np.ones((2, 2, 1)), {}, instance_params(track_running_stats=False), True),
     "more than 1 spatial element when training"),
    (lambda: instancenorm.backward3d(np.ones((2, 1, 1, 1)), {}, instance_params(track_running_stats=False), True,
                                     np.ones((2, 1, 1, 1))), "more than 1 spatial element when training"),
])
def test_invalid_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_what_is_not_an_error():
    """A single spatial element in eval mode, and a channel count other than num_features
    when the layer has no per-channel state (torch only warns)."""
    untracked = instance_params(track_running_stats=False)
    y, _ = instancenorm.step1d(np.ones((2, 2, 1)), instancenorm.initial_state(untracked), untracked, False)
    np.testing.assert_array_equal(y, 0.0)
    y, _ = instancenorm.step1d(np.arange(6.0).reshape(3, 2), instancenorm.initial_state(untracked), untracked, True)
    assert y.shape == (3, 2)


def test_batchnorm_takes_the_common_protocol_and_bias_false():
    p = {"num_features": 2, "eps": 3.0, "momentum": 0.1, "affine": True, "track_running_stats": True}
    state = {**batchnorm_initial_state(p), "weight": np.array([2.0, 1.0]), "bias": None}
    x = np.array([[1.0, 10.0], [3.0, 12.0]])
    y, _ = batchnorm_step(x, state, p, True, "bfloat16")
    np.testing.assert_allclose(y, [[-1.0, -0.5], [1.0, 0.5]], rtol=1e-15)
    grads = batchnorm_backward(x, state, p, True, np.ones_like(x), "bfloat16")
    assert grads["bias"] is None and grads["weight"] is not None


def test_the_new_references_do_not_import_torch():
    code = ("import sys; import nnconform.reference.layernorm, nnconform.reference.rmsnorm, "
            "nnconform.reference.groupnorm, nnconform.reference.instancenorm; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, "a new reference module imports torch"
