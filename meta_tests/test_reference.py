"""The float64 reference, the oracle every backend is judged by.

Hand-computed small examples pin each behaviour of the specs; property tests compare
the reference with an independent formulation (torch's modules in float64: meta
tests may use torch, the reference itself never does).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnconform.reference import INITIAL_STATE, STEPS, batch_statistics, dropout_forward
from nnconform.reference.batchnorm import batchnorm_initial_state, batchnorm_step

# Two channels, four values each. Channel 0 has mean 2, channel 1 mean 11; both have
# biased variance 1 and unbiased variance 4/3. With eps = 3, sqrt(var + eps) = 2.
X = np.array([[1.0, 10.0], [3.0, 12.0], [1.0, 12.0], [3.0, 10.0]])
NORMALIZED = np.array([[-0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [0.5, -0.5]])


def params(**overrides):
    base = {"num_features": 2, "eps": 3.0, "momentum": 0.1, "affine": True, "track_running_stats": True}
    return {**base, **overrides}


def test_initial_state():
    state = batchnorm_initial_state(params())
    np.testing.assert_array_equal(state["running_mean"], [0.0, 0.0])
    np.testing.assert_array_equal(state["running_var"], [1.0, 1.0])
    assert state["num_batches_tracked"] == 0
    np.testing.assert_array_equal(state["weight"], [1.0, 1.0])
    np.testing.assert_array_equal(state["bias"], [0.0, 0.0])
    bare = batchnorm_initial_state(params(affine=False, track_running_stats=False))
    assert all(bare[name] is None for name in ("running_mean", "running_var", "num_batches_tracked", "weight", "bias"))
    assert set(INITIAL_STATE) == set(STEPS) == {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d"}


def test_batch_statistics_are_per_channel_biased():
    mean, var, count = batch_statistics(X)
    np.testing.assert_array_equal(mean, [2.0, 11.0])
    np.testing.assert_array_equal(var, [1.0, 1.0])
    assert count == 4


def test_train_output_uses_batch_stats_and_eps_inside_the_sqrt():
    y, _ = batchnorm_step(X, batchnorm_initial_state(params()), params(), training=True)
    np.testing.assert_allclose(y, NORMALIZED, rtol=0, atol=1e-15)


def test_train_output_affine():
    state = {**batchnorm_initial_state(params()), "weight": np.array([2.0, -1.0]), "bias": np.array([0.5, 1.0])}
    y, _ = batchnorm_step(X, state, params(), training=True)
    np.testing.assert_allclose(y, NORMALIZED * [2.0, -1.0] + [0.5, 1.0], rtol=0, atol=1e-15)


def test_no_affine_has_no_scale_or_shift():
    y, state = batchnorm_step(X, batchnorm_initial_state(params(affine=False)), params(affine=False), training=True)
    np.testing.assert_allclose(y, NORMALIZED, rtol=0, atol=1e-15)
    assert state["weight"] is None and state["bias"] is None


def test_running_update_with_momentum_uses_the_unbiased_variance():
    _, state = batchnorm_step(X, batchnorm_initial_state(params()), params(momentum=0.1), training=True)
    np.testing.assert_allclose(state["running_mean"], [0.9 * 0 + 0.1 * 2.0, 0.9 * 0 + 0.1 * 11.0], rtol=1e-15)
    np.testing.assert_allclose(state["running_var"], [0.9 * 1 + 0.1 * 4 / 3] * 2, rtol=1e-15)
    assert state["num_batches_tracked"] == 1
    _, state = batchnorm_step(X + 1, state, params(momentum=0.1), training=True)
    np.testing.assert_allclose(state["running_mean"], [0.9 * 0.2 + 0.1 * 3.0, 0.9 * 1.1 + 0.1 * 12.0], rtol=1e-15)
    np.testing.assert_allclose(state["running_var"], [0.9 * (0.9 + 0.4 / 3) + 0.1 * 4 / 3] * 2, rtol=1e-15)
    assert state["num_batches_tracked"] == 2


def test_momentum_one_and_zero():
    _, state = batchnorm_step(X, batchnorm_initial_state(params()), params(momentum=1.0), training=True)
    np.testing.assert_allclose(state["running_mean"], [2.0, 11.0], rtol=1e-15)
    np.testing.assert_allclose(state["running_var"], [4 / 3, 4 / 3], rtol=1e-15)
    _, state = batchnorm_step(X, batchnorm_initial_state(params()), params(momentum=0.0), training=True)
    np.testing.assert_array_equal(state["running_mean"], [0.0, 0.0])
    np.testing.assert_array_equal(state["running_var"], [1.0, 1.0])
    assert state["num_batches_tracked"] == 1


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(batches=st.lists(hnp.arrays(np.float64, st.tuples(st.integers(2, 6), st.just(3)),
                                   elements=st.floats(-100, 100)), min_size=1, max_size=6))
def test_momentum_none_is_the_plain_mean_of_batch_stats(batches):
    """Cumulative average: after k calls the running stats are the plain mean of the
    k batch means and of the k unbiased batch variances; the initial values drop out."""
    state = batchnorm_initial_state(params(num_features=3))
    for x in batches:
        _, state = batchnorm_step(x, state, params(num_features=3, momentum=None), training=True)
    np.testing.assert_allclose(state["running_mean"], np.mean([x.mean(axis=0) for x in batches], axis=0),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(state["running_var"], np.mean([x.var(axis=0, ddof=1) for x in batches], axis=0),
                               rtol=1e-9, atol=1e-9)
    assert state["num_batches_tracked"] == len(batches)


def test_eval_normalizes_with_running_stats_and_leaves_them_alone():
    state = {**batchnorm_initial_state(params()), "running_mean": np.array([1.0, 10.0]),
             "running_var": np.array([1.0, 6.0]), "num_batches_tracked": 7}
    y, after = batchnorm_step(X, state, params(), training=False)
    np.testing.assert_allclose(y, [[0.0, 0.0], [1.0, 2 / 3], [0.0, 2 / 3], [1.0, 0.0]], rtol=0, atol=1e-15)
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(after[name], state[name])
    assert after["num_batches_tracked"] == 7


def test_untracked_uses_batch_stats_in_both_modes():
    untracked = params(track_running_stats=False)
    state = batchnorm_initial_state(untracked)
    for training in (True, False):
        y, after = batchnorm_step(X, state, untracked, training=training)
        np.testing.assert_allclose(y, NORMALIZED, rtol=0, atol=1e-15)
        assert after["running_mean"] is None and after["running_var"] is None
        assert after["num_batches_tracked"] is None


def test_channel_axis_is_one_for_every_rank():
    """(N, C, L), (N, C, H, W) and (N, C, D, H, W): statistics pool every axis but 1."""
    for shape in ((2, 2, 2), (2, 2, 1, 2), (1, 2, 2, 1, 2)):
        x = np.empty(shape)
        x[:, 0] = np.resize([1.0, 3.0], x[:, 0].shape)
        x[:, 1] = np.resize([10.0, 12.0], x[:, 1].shape)
        mean, var, count = batch_statistics(x)
        np.testing.assert_array_equal(mean, [2.0, 11.0])
        np.testing.assert_array_equal(var, [1.0, 1.0])
        assert count == x.size // 2
        y, _ = batchnorm_step(x, batchnorm_initial_state(params()), params(), training=True)
        np.testing.assert_allclose(np.abs(y), 0.5, rtol=1e-15)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1), (1, 3, 1, 1, 1)])
def test_single_value_per_channel_raises_in_training(shape):
    x = np.ones(shape)
    p = params(num_features=3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batchnorm_step(x, batchnorm_initial_state(p), p, training=True)
    y, _ = batchnorm_step(x, batchnorm_initial_state(p), p, training=False)  # eval: running stats, fine
    assert np.isfinite(y).all()


def test_input_without_channel_axis_raises():
    with pytest.raises(ValueError, match="channel axis"):
        batchnorm_step(np.ones(4), batchnorm_initial_state(params()), params(), training=True)


def test_dropout_given_a_mask():
    x = np.array([1.0, 2.0, 3.0, -4.0])
    keep = np.array([True, False, True, False])
    np.testing.assert_array_equal(dropout_forward(x, keep, 0.5), [2.0, 0.0, 6.0, 0.0])
    np.testing.assert_array_equal(dropout_forward(x, keep, 0.75), [4.0, 0.0, 12.0, 0.0])
    np.testing.assert_array_equal(dropout_forward(x, np.ones(4, bool), 0.0), x)


def test_dropout_p_one_is_all_zeros_without_nan():
    x = np.array([1.0, -2.0, 0.0, 1e300])
    for keep in (np.ones(4, bool), np.zeros(4, bool)):
        out = dropout_forward(x, keep, 1.0)
        np.testing.assert_array_equal(out, np.zeros(4))
        assert not np.isnan(out).any()


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(data=st.data(), p=st.floats(0.0, 0.999))
def test_dropout_property(data, p):
    x = data.draw(hnp.arrays(np.float64, hnp.array_shapes(max_dims=4), elements=st.floats(-1e6, 1e6)), label="x")
    keep = data.draw(hnp.arrays(bool, x.shape), label="keep")
    out = dropout_forward(x, keep, p)
    assert out.dtype == np.float64 and out.shape == x.shape
    np.testing.assert_array_equal(out[~keep], 0.0)
    np.testing.assert_allclose(out[keep] * (1 - p), x[keep], rtol=1e-12)


def test_running_stats_approach_zero_and_one_over_many_standard_normal_batches():
    """The notebook behaviour: feed standard-normal batches and watch the running
    statistics converge to the true mean 0 and variance 1. Fixed seed, so the margins
    (many standard errors wide) are checked on one deterministic sequence."""
    rng = np.random.default_rng(20240601)
    for momentum, margin in ((0.1, 0.1), (None, 0.02)):
        p = params(num_features=4, eps=1e-5, momentum=momentum)
        state = batchnorm_initial_state(p)
        for _ in range(400):
            _, state = batchnorm_step(rng.standard_normal((32, 4, 3)), state, p, training=True)
        np.testing.assert_allclose(state["running_mean"], 0.0, atol=margin, err_msg=f"momentum={momentum}")
        np.testing.assert_allclose(state["running_var"], 1.0, atol=margin, err_msg=f"momentum={momentum}")
        assert state["num_batches_tracked"] == 400


def test_the_reference_does_not_import_torch():
    code = ("import sys, nnconform.reference, nnconform.reference.batchnorm, nnconform.reference.dropout; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, "nnconform.reference imports torch"


# Independent check of the oracle: torch's own modules, in float64.
TORCH_LAYERS = {"BatchNorm1d": (2, 3), "BatchNorm2d": (4, 4), "BatchNorm3d": (5, 5)}


@st.composite
def batchnorm_scenarios(draw):
    layer = draw(st.sampled_from(sorted(TORCH_LAYERS)), label="layer")
    rank = draw(st.integers(*TORCH_LAYERS[layer]), label="rank")
    shape = draw(hnp.array_shapes(min_dims=rank, max_dims=rank, min_side=1, max_side=5), label="shape")
    if shape[0] * int(np.prod(shape[2:])) < 2:
        shape = (2,) + shape[1:]
    p = {"num_features": shape[1],
         "eps": draw(st.floats(1e-8, 1.0), label="eps"),
         "momentum": draw(st.none() | st.floats(0.0, 1.0), label="momentum"),
         "affine": draw(st.booleans(), label="affine"),
         "track_running_stats": draw(st.booleans(), label="track_running_stats")}
    loc = draw(st.sampled_from([0.0, 1e4, -3.0]), label="loc")
    scale = draw(st.sampled_from([1.0, 1e-3, 10.0]), label="scale")
    modes = draw(st.lists(st.booleans(), min_size=1, max_size=5), label="training per call")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return layer, shape, p, loc, scale, modes, seed


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(scenario=batchnorm_scenarios())
def test_batchnorm_reference_matches_torch_float64(scenario):
    torch = pytest.importorskip("torch")
    layer, shape, p, loc, scale, modes, seed = scenario
    rng = np.random.default_rng(seed)
    module = getattr(torch.nn, layer)(p["num_features"], eps=p["eps"], momentum=p["momentum"], affine=p["affine"],
                                      track_running_stats=p["track_running_stats"], dtype=torch.float64)
    state = batchnorm_initial_state(p)
    if p["affine"]:
        weight, bias = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(weight))
            module.bias.copy_(torch.from_numpy(bias))
        state = {**state, "weight": weight, "bias": bias}
    for call, training in enumerate(modes):
        x = loc + scale * rng.standard_normal(shape)
        module.train(training)
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        got, state = batchnorm_step(x, state, p, training)
        where = f"call {call} ({'train' if training else 'eval'}) of {layer}{shape} with {p}"
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, 1 / scale), err_msg=where)
        if p["track_running_stats"]:
            np.testing.assert_allclose(state["running_mean"], module.running_mean.numpy(), rtol=1e-10, atol=1e-10,
                                       err_msg=where)
            np.testing.assert_allclose(state["running_var"], module.running_var.numpy(), rtol=1e-10,
                                       atol=1e-10, err_msg=where)
            assert state["num_batches_tracked"] == int(module.num_batches_tracked), where
        else:
            assert module.running_mean is None and state["running_mean"] is None
