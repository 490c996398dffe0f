"""Every analytic gradient of the reference against float64 central finite differences.

The loss is L = sum(grad_output * y), so dL/dz for an input, weight or bias element z
is what the reference's backward returns for it, and the central difference
(L(z + H) - L(z - H)) / (2H) estimates it within
    H^2 / 6 * max|d^3 L / dz^3|   (truncation)   +   err(L) / H   (roundoff).
The drawn domain bounds both. Inputs in [-3, 3], grad_output in [-1, 1], weight and
bias in [-2, 2], eps in [0.05, 1] and running_var in [0.1, 3] keep every inverse
standard deviation (or inverse RMS) s below 1/sqrt(0.05) < 4.5; shapes have at most
n = 243 elements and M = 81 values per statistic, so |xhat| <= sqrt(M) = 9.
Truncation: moving one x_i by t = u / s changes a statistic's M standardized values
to xhat_k(u) = (xhat_k + c_k u) q(u)^(-1/2), q = 1 + 2 u xhat_i / M + a u^2, with
|c_k| <= 1 and a <= 1/M (the same form for the RMS, with x_k s for xhat_k). Expanding
q^(-1/2) to third order gives |d^3 xhat_k / du^3| <= 36 / M, so over the M coupled
outputs |d^3 L / dx_i^3| <= M * 2 * 36 s^3 / M < 6.6e3, and with H = 1e-5 the
truncation error is below 1.1e-7. Roundoff: each y_k carries an error below
(M + 5) eps64 (|w| |xhat| + |b|) < 86 * 2.2e-16 * 20 < 3.8e-13, so err(L) < 243 *
3.8e-13 < 9.2e-11 and the roundoff term is below 9.2e-6. Hence ATOL = 1e-5. Weight,
bias, dropout and the eval paths with running statistics are linear in the perturbed
element: there only the roundoff term applies. Observed: below 1e-9 on 1,000 draws.
test_a_wrong_gradient_is_caught: the usual mistakes are off by 0.09 to 1.05 there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from meta_tests.reference_cases import cases, fixed_train_case, variant_id, variants
from nnconform.reference import dropout_backward, dropout_forward, groupnorm, instancenorm, layernorm, rmsnorm

H = 1e-5
ATOL = 1e-5
FD_SETTINGS = settings(max_examples=6, deadline=None, derandomize=True, database=None)


def central_differences(loss, z: np.ndarray) -> np.ndarray:
    """d loss / d z by central differences of step H, element by element."""
    grad = np.empty_like(z)
    for index in np.ndindex(z.shape):
        plus, minus = z.copy(), z.copy()
        plus[index] += H
        minus[index] -= H
        grad[index] = (loss(plus) - loss(minus)) / (2 * H)
    return grad


def check_gradients(case, x, grad_output):
    """Assert the reference's input, weight and bias gradients equal central differences."""
    got = case.backward(x, grad_output)
    assert set(got) == {"input", "weight", "bias"}, f"{case.layer}: backward returned {sorted(got)}"

    def loss(x_, state=case.state):
        return math.fsum((grad_output * case.step(x_, state)[0]).ravel())

    where = f"{case.layer} ({'train' if case.training else 'eval'}) {case.params} shape {case.shape}"
    np.testing.assert_allclose(got["input"], central_differences(loss, x), rtol=0, atol=ATOL,
                               err_msg=f"d input, {where}")
    for name in ("weight", "bias"):
        if case.state[name] is None:
            assert got[name] is None, f"d {name} of an absent {name} should be None, {where}"
            continue
        numeric = central_differences(lambda z, n=name: loss(x, {**case.state, n: z}), case.state[name])
        np.testing.assert_allclose(got[name], numeric, rtol=0, atol=ATOL, err_msg=f"d {name}, {where}")


@pytest.mark.parametrize("variant", list(variants()), ids=variant_id)
@FD_SETTINGS
@given(data=st.data())
def test_layer_gradients_match_central_differences(variant, data):
    layer, training, tracked, batched = variant
    case = data.draw(cases(layer, training=training, tracked=tracked, batched=batched,
                           eps=st.floats(0.05, 1.0)), label="case")
    x = data.draw(hnp.arrays(np.float64, case.shape, elements=st.floats(-3, 3)), label="x")
    grad_output = data.draw(hnp.arrays(np.float64, case.shape, elements=st.floats(-1, 1)), label="grad_output")
    check_gradients(case, x, grad_output)


@FD_SETTINGS
@given(data=st.data(), p=st.floats(0.0, 0.9) | st.just(1.0))
def test_dropout_gradient_matches_central_differences(data, p):
    x = data.draw(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4), elements=st.floats(-3, 3)),
                  label="x")
    keep = data.draw(hnp.arrays(bool, x.shape), label="keep")
    grad_output = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(-1, 1)), label="grad_output")
    got = dropout_backward(keep, p, grad_output)
    numeric = central_differences(lambda z: math.fsum((grad_output * dropout_forward(z, keep, p)).ravel()), x)
    np.testing.assert_allclose(got["input"], numeric, rtol=0, atol=ATOL, err_msg=f"dropout d input, p={p}")
    assert got["weight"] is None and got["bias"] is None


# Wrong gradients through the statistics, as a hand derivation gets them wrong.
STANDARDIZE_FAULTS = {
    "statistics held constant": lambda g, xhat, inv_std, axes: g * inv_std,
    "mean(g) term missing": lambda g, xhat, inv_std, axes: inv_std * (g - xhat * (g * xhat).mean(axis=axes,
                                                                                                keepdims=True)),
    "xhat term missing": lambda g, xhat, inv_std, axes: inv_std * (g - g.mean(axis=axes, keepdims=True)),
}
RMS_FAULTS = {"rms held constant": lambda g, x, r, axes: g * r,
              "r^3 term halved": lambda g, x, r, axes: r * g - 0.5 * r ** 3 * x * (g * x).mean(axis=axes,
                                                                                              keepdims=True)}
FAULT_LAYERS = {layernorm: "LayerNorm", groupnorm: "GroupNorm", instancenorm: "InstanceNorm2d", rmsnorm: "RMSNorm"}
FAULTY = ([(module, "standardize_backward", fault, name) for module in (layernorm, groupnorm, instancenorm)
           for name, fault in STANDARDIZE_FAULTS.items()]
          + [(rmsnorm, "rms_backward", fault, name) for name, fault in RMS_FAULTS.items()])


@pytest.mark.parametrize("module, function, fault, name", FAULTY,
                         ids=[f"{m.__name__.rsplit('.', 1)[1]}-{n}" for m, _, _, n in FAULTY])
def test_a_wrong_gradient_is_caught(monkeypatch, module, function, fault, name):
    case = fixed_train_case(FAULT_LAYERS[module])
    rng = np.random.default_rng(11)
    x, grad_output = rng.uniform(-3, 3, case.shape), rng.uniform(-1, 1, case.shape)
    monkeypatch.setattr(module, function, fault)
    with pytest.raises(AssertionError, match="d input"):
        check_gradients(case, x, grad_output)
