"""The reference against torch's own modules in float64, on drawn inputs: outputs,
gradients and the state after a sequence of train and eval calls.

This compares behaviour: torch is a second implementation here, not the authority. The
draws leave out the inputs on which torch raises where its documentation describes a
result (reference_cases.cases, torch_domain, lists them); they are findings about
torch, not reasons to change the reference.
Tolerances follow the rounding analysis of test_reference_forward (its factor 4 covers
the errors of both sides, with headroom): with X = max|x|, s the
largest 1/std, M values per statistic, K terms in a parameter gradient's sum and
G = max|grad_output| (1 + max|w|),
    output   4 eps (M + 11) (1 + |w|) (s X + sqrt(M) + |b|),
    d input  4 eps (M + 11) s G (2 sqrt(M) + 3) (s X + sqrt(M)),
    d weight / d bias   4 eps (M + K + 11) K max|grad_output| (s X + sqrt(M) + 1).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meta_tests.reference_cases import cases, variant_id, variants
from meta_tests.test_reference_forward import EPS64, expected, magnitude, statistic_size
from nnconform.reference import rmsnorm

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # as the torch backend does: tiny tensors, and threads only contend on 2 cores


def torch_module(case, dtype=torch.float64):
    """The torch module of ``case``, holding the case's state."""
    p, cls = case.params, getattr(torch.nn, case.layer)
    if case.layer.startswith(("BatchNorm", "InstanceNorm")):
        module = cls(p["num_features"], eps=p["eps"], momentum=p["momentum"], affine=p["affine"],
                     track_running_stats=p["track_running_stats"], bias=p["bias"], dtype=dtype)
    elif case.layer == "GroupNorm":
        module = cls(p["num_groups"], p["num_channels"], eps=p["eps"], affine=p["affine"], bias=p["bias"], dtype=dtype)
    elif case.layer == "LayerNorm":
        module = cls(p["normalized_shape"], eps=p["eps"], elementwise_affine=p["elementwise_affine"], bias=p["bias"],
                     dtype=dtype)
    else:
        module = cls(p["normalized_shape"], eps=p["eps"], elementwise_affine=p["elementwise_affine"], dtype=dtype)
    with torch.no_grad():
        for name, value in case.state.items():
            if value is not None:
                getattr(module, name).copy_(torch.as_tensor(value))
    return module


def torch_state(module) -> dict:
    names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return {n: (None if getattr(module, n, None) is None else getattr(module, n).detach().numpy().copy())
            for n in names}


def torch_call(module, x, grad_output, training):
    module.train(training)
    module.zero_grad(set_to_none=True)
    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    y.backward(torch.tensor(grad_output))
    grads = {"input": xt.grad.numpy(),
             "weight": None if module.weight is None else module.weight.grad.numpy(),
             "bias": None if getattr(module, "bias", None) is None else module.bias.grad.numpy()}
    return y.detach().numpy(), grads


@pytest.mark.parametrize("variant", list(variants()), ids=variant_id)
@settings(max_examples=4, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_reference_matches_torch_float64(variant, data):
    layer, training, tracked, batched = variant
    eps = st.floats(1e-6, 1.0) | (st.none() if layer == "RMSNorm" else st.nothing())
    case = data.draw(cases(layer, training=training, tracked=tracked, batched=batched, eps=eps, torch_domain=True),
                     label="case")
    case = dataclasses.replace(case, dtype="float64")
    modes = [training] + data.draw(st.lists(st.booleans(), max_size=3), label="later modes")
    loc = data.draw(st.sampled_from([0.0, 3.0, -1e3]), label="loc")
    scale = data.draw(st.sampled_from([1.0, 1e-3, 1e2]), label="scale")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    module, state = torch_module(case), case.state
    for call, mode in enumerate(modes):
        x, grad_output = loc + scale * rng.uniform(-1, 1, case.shape), rng.uniform(-1, 1, case.shape)
        now = dataclasses.replace(case, state=state, training=mode)
        where = f"call {call} ({'train' if mode else 'eval'}) of {variant_id(variant)} {case.params} shape {case.shape}"
        try:
            want_y, want_grads = torch_call(module, x, grad_output, mode)
        except ValueError:
            with pytest.raises(ValueError):
                now.step(x)
            return
        y, after = now.step(x)
        grads = now.backward(x, grad_output)
        m, _ = statistic_size(now)
        s, big_x, w, b = expected(now, x)[4], magnitude(x), magnitude(state["weight"]), magnitude(state["bias"])
        spread = s * big_x + math.sqrt(m)
        np.testing.assert_allclose(y, want_y, rtol=0, atol=4 * EPS64 * (m + 11) * (1 + w) * (spread + b),
                                   err_msg=f"output, {where}")
        g = magnitude(grad_output) * (1 + w)
        np.testing.assert_allclose(grads["input"], want_grads["input"], rtol=0,
                                   atol=4 * EPS64 * (m + 11) * s * g * (2 * math.sqrt(m) + 3) * spread,
                                   err_msg=f"d input, {where}")
        for name in ("weight", "bias"):
            if want_grads[name] is None:
                assert grads[name] is None, f"d {name} should be None, {where}"
                continue
            k = x.size // want_grads[name].size
            tol = 4 * EPS64 * (m + k + 11) * k * magnitude(grad_output) * (spread + 1)
            np.testing.assert_allclose(grads[name], want_grads[name], rtol=0, atol=tol, err_msg=f"d {name}, {where}")
        theirs = torch_state(module)
        for name in ("running_mean", "running_var"):
            if theirs[name] is None:
                assert after.get(name) is None, f"{name} should be absent, {where}"
                continue
            size = big_x if name == "running_mean" else 8 * big_x ** 2
            tol = 4 * EPS64 * (m + x.shape[0] + 11) * (magnitude(state[name]) + size)
            np.testing.assert_allclose(after[name], theirs[name], rtol=0, atol=tol, err_msg=f"{name}, {where}")
        want_count = None if theirs["num_batches_tracked"] is None else int(theirs["num_batches_tracked"])
        assert after.get("num_batches_tracked") == want_count, f"num_batches_tracked, {where}"
        state = after


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_rmsnorm_eps_none_is_the_opmath_epsilon(dtype):
    """eps=None is float32's epsilon for float16, bfloat16 and float32 layers (torch 2.13's
    documentation), not the input dtype's: at x = 0.01, mean(x^2) = 1e-4 and float16's
    epsilon (9.8e-4) would give y = 0.30, float32's gives 0.9994."""
    import ml_dtypes  # noqa: F401  (numpy's bfloat16)
    params = {"normalized_shape": (4,), "eps": None, "elementwise_affine": True}
    x = np.full((2, 4), 0.01, dtype=dtype if dtype != "bfloat16" else ml_dtypes.bfloat16).astype(np.float64)
    state = rmsnorm.initial_state(params)
    want, _ = rmsnorm.step(x, state, params, True, dtype)
    module = torch.nn.RMSNorm(4, dtype=getattr(torch, dtype))
    got = module(torch.tensor(x).to(getattr(torch, dtype))).detach().float().numpy()
    tolerance = 2 * float(torch.finfo(getattr(torch, dtype)).eps)
    np.testing.assert_allclose(got, want, rtol=tolerance, err_msg=f"RMSNorm eps=None, {dtype}")
    assert abs(want[0, 0] - 0.9994) < 1e-4
