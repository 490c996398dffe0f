"""Every forward formula of the reference against a second, straightforward
implementation: explicit Python loops over samples, groups and channels, with
math.fsum sums (correctly rounded), written from the formulas in the module docstrings.

Tolerance, per example, from the standard error analysis of the vectorized version
(the loop version's own error is a few ulps): numpy's sums of M values are off by at
most M eps Σ|v|, so with s = 1/sqrt(var + eps) (or 1/RMS) and X = max|x|,
    err(mean) <= M eps X,   err(var) / (var + eps) <= (M + 3) eps,   err(s) / s <= (M + 7) eps / 2,
and y = (x - mean) s w + b is off by at most eps (M + 11) (1 + |w|) (s X + sqrt(M) + |b|),
since |xhat| <= sqrt(M). The check allows 4 times that (both versions, and headroom).
Running statistics mix a previous value r with a statistic averaged over N samples:
allowed 4 eps (M + N + 11) (|r| + X) for the mean and 4 eps (M + N + 11) (|r| + 8 X^2)
for the variance (an unbiased variance is at most 2 * (2X)^2). The inputs are
loc + scale * u, u drawn in [-1, 1], loc up to 1e3 and scale down to 1e-3, so the
statistics are often ill-conditioned and the bound, not a fixed number, is what holds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from meta_tests.reference_cases import cases, fixed_train_case, variant_id, variants
from nnconform.reference import groupnorm, instancenorm, layernorm, rmsnorm

EPS64 = float(np.finfo(np.float64).eps)


def standardize(values, eps):
    """(mean, biased variance, 1/sqrt(var + eps)) of a list of floats, with fsum."""
    mean = math.fsum(values) / len(values)
    var = math.fsum((v - mean) ** 2 for v in values) / len(values)
    return mean, var, (1 / math.sqrt(var + eps) if var + eps > 0 else math.nan)


def loop_normalize(x, groups_of, eps, scale_of, shift_of, stats_of=None):
    """y[i] = (x[i] - mean) * s * scale_of(i) + shift_of(i), with (mean, s) from the values
    of i's group (groups_of(i) a hashable key), or from stats_of(key) when given."""
    members = {}
    for index in np.ndindex(x.shape):
        members.setdefault(groups_of(index), []).append(index)
    y, used = np.empty_like(x), {}
    for key, indices in members.items():
        if stats_of is None:
            mean, var, s = standardize([float(x[i]) for i in indices], eps)
        else:
            mean, var = stats_of(key)
            s = 1 / math.sqrt(var + eps)
        used[key] = (mean, var, len(indices), s)
        for i in indices:
            y[i] = (x[i] - mean) * s * scale_of(i) + shift_of(i)
    return y, used


def expected(case, x):
    """The loop version of one forward call: (output, running mean, running var, counter,
    largest 1/std or 1/RMS)."""
    p, st_ = case.params, case.state
    weight, bias = st_["weight"], st_["bias"]
    if case.layer in ("LayerNorm", "RMSNorm"):
        d = len(p["normalized_shape"])
        scale = (lambda i: 1.0) if weight is None else (lambda i: weight[i[x.ndim - d:]])
        shift = (lambda i: 0.0) if bias is None else (lambda i: bias[i[x.ndim - d:]])
        if case.layer == "LayerNorm":
            y, used = loop_normalize(x, lambda i: i[:x.ndim - d], p["eps"], scale, shift)
            return y, None, None, None, largest_s(used)
        eps = p["eps"] if p["eps"] is not None else (2.0 ** -52 if case.dtype == "float64" else 2.0 ** -23)
        rms = {}
        for i in np.ndindex(x.shape):
            rms.setdefault(i[:x.ndim - d], []).append(float(x[i]) ** 2)
        inverse = {key: 1 / math.sqrt(math.fsum(squares) / len(squares) + eps) for key, squares in rms.items()}
        y = np.empty_like(x)
        for i in np.ndindex(x.shape):
            y[i] = x[i] * inverse[i[:x.ndim - d]] * scale(i)
        return y, None, None, None, max(inverse.values(), default=0.0)
    scale = (lambda i: 1.0) if weight is None else (lambda i: weight[i[1]])
    shift = (lambda i: 0.0) if bias is None else (lambda i: bias[i[1]])
    if case.layer == "GroupNorm":
        per_group = p["num_channels"] // p["num_groups"]
        y, used = loop_normalize(x, lambda i: (i[0], i[1] // per_group), p["eps"], scale, shift)
        return y, None, None, None, largest_s(used)
    tracked = st_["running_mean"] is not None
    running = None if case.training or not tracked else (lambda key: (st_["running_mean"][key[-1]],
                                                                      st_["running_var"][key[-1]]))
    if case.layer.startswith("BatchNorm"):
        y, used = loop_normalize(x, lambda i: (i[1],), p["eps"], scale, shift, running)
        if not (case.training and tracked):
            return y, st_["running_mean"], st_["running_var"], st_["num_batches_tracked"], largest_s(used)
        count = st_["num_batches_tracked"] + 1
        f = 1 / count if p["momentum"] is None else p["momentum"]
        mean = [(1 - f) * st_["running_mean"][c] + f * used[(c,)][0] for c in range(x.shape[1])]
        var = [(1 - f) * st_["running_var"][c] + f * used[(c,)][1] * used[(c,)][2] / (used[(c,)][2] - 1)
               for c in range(x.shape[1])]
        return y, np.array(mean), np.array(var), count, largest_s(used)
    unbatched = x.ndim == int(case.layer[-2]) + 1
    batch = x[np.newaxis] if unbatched else x
    y, used = loop_normalize(batch, lambda i: (i[0], i[1]), p["eps"], scale, shift, running)
    y = y[0] if unbatched else y
    if not (case.training and tracked) or p["momentum"] is None:
        return y, st_["running_mean"], st_["running_var"], st_["num_batches_tracked"], largest_s(used)
    f, samples = p["momentum"], range(batch.shape[0])
    mean = [(1 - f) * st_["running_mean"][c] + f * math.fsum(used[(n, c)][0] for n in samples) / len(samples)
            for c in range(batch.shape[1])]
    var = [(1 - f) * st_["running_var"][c]
           + f * math.fsum(used[(n, c)][1] * used[(n, c)][2] / (used[(n, c)][2] - 1) for n in samples) / len(samples)
           for c in range(batch.shape[1])]
    return y, np.array(mean), np.array(var), st_["num_batches_tracked"], largest_s(used)


def largest_s(used) -> float:
    return max((stats[3] for stats in used.values()), default=0.0)


def statistic_size(case) -> tuple[int, int]:
    """(M, N): the most values behind one statistic and the number of samples averaged."""
    shape, p = case.shape, case.params
    if case.layer in ("LayerNorm", "RMSNorm"):
        return int(np.prod(p["normalized_shape"])), 1
    if case.layer == "GroupNorm":
        return int(np.prod(shape[2:])) * p["num_channels"] // p["num_groups"], 1
    if case.layer.startswith("BatchNorm"):
        return int(np.prod(shape)) // shape[1], 1
    spatial = int(case.layer[-2])
    return int(np.prod(shape[-spatial:])), (shape[0] if len(shape) == spatial + 2 else 1)


def magnitude(a) -> float:
    return 0.0 if a is None or np.size(a) == 0 else float(np.max(np.abs(a)))


@pytest.mark.parametrize("variant", list(variants()), ids=variant_id)
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_forward_matches_the_loop_version(variant, data):
    layer, training, tracked, batched = variant
    eps = st.floats(1e-8, 1.0) | (st.none() if layer == "RMSNorm" else st.nothing())
    case = data.draw(cases(layer, training=training, tracked=tracked, batched=batched, eps=eps), label="case")
    loc = data.draw(st.sampled_from([0.0, 3.0, -1e3]), label="loc")
    scale = data.draw(st.sampled_from([1.0, 1e-3, 1e2]), label="scale")
    x = loc + scale * data.draw(hnp.arrays(np.float64, case.shape, elements=st.floats(-1, 1)), label="u")
    check_forward(case, x, variant_id(variant))


def check_forward(case, x, label):
    """Assert the reference's output and state after one call equal the loop version's."""
    y, state = case.step(x)
    want_y, want_mean, want_var, want_count, s = expected(case, x)
    m, n = statistic_size(case)
    big_x = magnitude(x)
    bound = 4 * EPS64 * (m + 11) * (1 + magnitude(case.state["weight"])) * (
        s * big_x + math.sqrt(m) + magnitude(case.state["bias"]))
    where = f"{label} {case.params} shape {case.shape} dtype {case.dtype}"
    np.testing.assert_allclose(y, want_y, rtol=0, atol=bound, err_msg=f"output, {where}")
    assert y.shape == x.shape and y.dtype == np.float64, where
    assert state.get("num_batches_tracked") == want_count, f"num_batches_tracked, {where}"
    for name, want, size in (("running_mean", want_mean, big_x), ("running_var", want_var, 8 * big_x ** 2)):
        if want is None:
            assert state.get(name) is None, f"{name} should be absent, {where}"
            continue
        tol = 4 * EPS64 * (m + n + 11) * (magnitude(case.state[name]) + size)
        np.testing.assert_allclose(state[name], want, rtol=0, atol=tol, err_msg=f"{name}, {where}")


# Wrong formulas the loop version must catch.
def _unbiased(x, axes):
    mean = x.mean(axis=axes, keepdims=True)
    count = x.size // mean.size
    return mean, ((x - mean) ** 2).sum(axis=axes, keepdims=True) / (count - 1)


FORWARD_FAULTS = [(module, "moments", _unbiased, "unbiased variance")
                  for module in (layernorm, groupnorm, instancenorm)]
FORWARD_FAULTS += [(module, "inverse_std", lambda var, eps: 1 / (np.sqrt(var) + eps), "eps outside the square root")
                   for module in (layernorm, groupnorm, instancenorm)]
FORWARD_FAULTS += [(rmsnorm, "OPMATH_EPS", {"float16": 2.0 ** -10}, "eps=None as the input dtype's epsilon")]
FAULT_LAYERS = {layernorm: "LayerNorm", groupnorm: "GroupNorm", instancenorm: "InstanceNorm2d", rmsnorm: "RMSNorm"}


@pytest.mark.parametrize("module, attribute, fault, name", FORWARD_FAULTS,
                         ids=[f"{m.__name__.rsplit('.', 1)[1]}-{n}" for m, _, _, n in FORWARD_FAULTS])
def test_a_wrong_formula_is_caught(monkeypatch, module, attribute, fault, name):
    layer = FAULT_LAYERS[module]
    case = fixed_train_case(layer, eps=None, dtype="float16") if module is rmsnorm else fixed_train_case(layer)
    x = np.random.default_rng(11).uniform(-3, 3, case.shape)
    check_forward(case, x, f"{layer} unfaulted")
    monkeypatch.setattr(module, attribute, fault)
    with pytest.raises(AssertionError, match="output"):
        check_forward(case, x, f"{layer} with {name}")
