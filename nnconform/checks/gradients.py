"""Gradient checks, for backends that declare autograd.

The layer runs one forward call with ``requires_grad`` set, then ``backward`` with
a grad_output the check chooses; the gradients are judged against the float64
reference run on exactly what the layer had: the input rounded to its dtype, the
layer's state before the call, and (for a random layer) the mask of that same call, read
off its output.
"""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, check_finite, describe_positions
from nnconform.checks.masks import classify, distinct_input, matches, rate, unit_values, with_survivors
from nnconform.checks.reference_checks import compare_with_reference, state_as_float64, statistics_used
from nnconform.dtypes import dtype_max, dtype_name, numpy_dtype


def gradient_mask(ctx: CheckContext) -> None:
    """d input = grad_output * keep * scale for the kept units of the same forward call
    in train mode, grad_output itself in eval mode; no parameter gradient."""
    case = ctx.case
    layer = ctx.prepare()
    ctx.require_grad(layer)
    x = with_survivors(ctx, distinct_input(ctx, 0))
    out = ctx.forward(layer, x.copy())
    grad_output = with_survivors(ctx, case.batch(1))
    grads = ctx.backward(layer, grad_output)
    p = rate(ctx)
    if case.mode == "train":
        _, scale, shift = unit_values(ctx)
        kept_value = scale * x.astype(np.float64) + shift if np.isfinite(scale) else np.zeros(x.shape)
        check_finite(ctx, "output", out, _beyond_as_inf(ctx, kept_value))  # beyond the dtype: inf is right
        dropped, kept = classify(ctx, x, out)
        keep = ~dropped
        want = np.where(keep, grad_output.astype(np.float64) * (scale if np.isfinite(scale) else 0.0), 0.0)
        how = f"grad_output * mask * scale with the forward call's mask ({int(keep.sum())} of {keep.size} kept)"
        if not keep.any():
            ctx.not_exercised(f"no unit was kept (p={p!r})")
    else:
        want, how = grad_output.astype(np.float64), "grad_output (eval mode is the identity)"
    for name, value in grads.items():
        if name != "input" and value is not None:
            ctx.fail(f"backward returned a {name} gradient of shape {np.shape(value)}, but "
                     f"{case.layer} has no {name}")
    got = _gradient(ctx, grads, "input", x)
    tol = ctx.clause.tolerances[case.dtype]
    check_finite(ctx, "input gradient", got, _beyond_as_inf(ctx, want))
    wrong = ~matches(ctx, got, want)
    if wrong.any():
        first = tuple(np.argwhere(wrong)[0])
        ctx.fail(f"input gradient is not {how} in {describe_positions(wrong)}; first at {first}: got {got[first]:.9g}, "
                 f"expected {want[first]:.9g} for grad_output {float(grad_output[first]):.9g} and output "
                 f"{float(out[first]):.9g} (p={p!r}, {case.mode} mode, {case.dtype}, rtol {tol.rtol:g})")


def _beyond_as_inf(ctx: CheckContext, values: np.ndarray) -> np.ndarray:
    """Values beyond the dtype's largest finite one as inf: there an infinity is the
    correctly rounded result, not a fault."""
    return np.where(np.abs(values) > dtype_max(ctx.case.dtype), np.inf, values)


def gradient_reference(ctx: CheckContext) -> None:
    """Input and trainable-state gradients of one call after `warmup` training calls,
    against the float64 reference's, in the case's mode."""
    case = ctx.case
    layer = ctx.prepare()
    warmup = case.scenario["warmup"]
    ctx.require_grad(layer)
    before = state_as_float64(ctx.state(layer))
    x = case.batch(warmup)
    ctx.forward(layer, x.copy())
    x64 = x.astype(np.float64)
    training = case.mode == "train"
    stats = statistics_used(ctx, case.as_batched(x64), before, training)
    grad_output = _grad_output(ctx, stats, case.as_batched(x64), warmup + 1)
    grads = ctx.backward(layer, grad_output)
    try:
        want = ctx.clause.model.backward_for(case.layer)(x64, before, case.params, training, grad_output.astype(np.float64), case.dtype)
    except Exception as error:
        ctx.fail(f"the reference could not run from the backend's state: {type(error).__name__}: {error}")
    scales = gradient_error_scales(ctx, stats, case.as_batched(grad_output.astype(np.float64)), before)
    for name in ("input",) + ctx.clause.model.trainable:
        if want.get(name) is None:
            if grads.get(name) is not None:
                ctx.fail(f"backward returned a {name} gradient of shape {np.shape(grads[name])}, "
                         f"but the layer has no {name} ({_where(ctx)})")
            continue
        scale = scales[name]
        compare_with_reference(ctx, f"{name} gradient ({case.mode} mode, {case.scenario['warmup']} warmup call(s))",
                               _gradient(ctx, grads, name, x if name == "input" else None), want[name], (scale, scale))


def _grad_output(ctx: CheckContext, stats: dict, xb: np.ndarray, index: int) -> np.ndarray:
    """1 + xhat + noise, in the input's dtype. Its mean over each statistic's members and
    its correlation with xhat are both of order one, so a backward that treats the
    statistics as constants is off by order one, not by the 1/sqrt(count) an
    independent zero-mean grad_output would leave."""
    xhat = (xb - stats["batch_mean"]) / np.sqrt(stats["batch_var"] + 1e-12)
    noise = np.random.default_rng([ctx.case.value_seed, index]).standard_normal(xb.shape)
    out = (1.0 + xhat + noise).astype(numpy_dtype(ctx.case.dtype))
    return out if ctx.case.batched else out[0]


def gradient_error_scales(ctx: CheckContext, stats: dict, grad: np.ndarray, before: dict) -> dict:
    """Per gradient, the scale S of the error a conforming layer may make, so that the
    allowed error is (rounding * eps_dtype + accumulation * eps_acc) * S.

    Each gradient is a sum of terms; S is the sum of their magnitudes (for the input
    gradient, of one statistic's largest), times the condition number of subtracting
    the mean, 1 + max|x| * inv_std: an ulp of the largest input, divided by the
    spread, is the error of xhat. The input gradient's terms are means over the
    statistic's members of g = grad * gain, so their scale is the largest |g| among
    them: where a statistic spans several channels (a grouped reduction), channels with other
    weights than the element's own enter it. A trainable field that starts at 1 is a
    gain (its gradient sums grad * xhat), one that starts at 0 a shift (it sums grad).
    """
    family, norm, params = ctx.clause.model, ctx.clause.model.normalization, ctx.case.params
    inv_std = 1.0 / np.sqrt(np.maximum(stats["var"], 0) + stats["eps"])
    x_like = ctx.case.as_batched(ctx.case.batch(ctx.case.scenario["warmup"]).astype(np.float64))
    xhat = np.abs(x_like - stats["mean"]) * inv_std
    condition = 1.0 + stats["largest"] * inv_std
    view, axes = norm.grouped(np.abs(grad) * stats["gain"], params)
    largest_g = np.broadcast_to(view.max(axis=axes, keepdims=True), view.shape).reshape(grad.shape)
    hview, _ = norm.grouped(xhat, params)
    largest_xhat = np.broadcast_to(hview.max(axis=axes, keepdims=True), hview.shape).reshape(grad.shape)
    input_scale = inv_std * largest_g * (1.0 + largest_xhat) * condition
    scales = {"input": input_scale if ctx.case.batched else input_scale[0]}
    for name in family.trainable:
        if before.get(name) is None:
            continue
        terms = np.abs(grad) * ((1.0 + xhat) * condition if family.state[name].init == 1 else 1.0)
        scales[name] = _sum_to_field(family, name, terms, np.shape(before[name]))
    return scales


def _sum_to_field(family, name: str, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a batched array over every axis a state field does not span."""
    if family.state[name].broadcast == "trailing":
        return values.reshape((-1,) + tuple(shape)).sum(axis=0)
    return values.sum(axis=tuple(i for i in range(values.ndim) if i != 1))


def _gradient(ctx: CheckContext, grads: dict, name: str, like: np.ndarray | None) -> np.ndarray:
    """The named gradient as float64; the input gradient must have the input's shape and dtype."""
    __tracebackhide__ = True
    value = grads.get(name)
    if value is None:
        ctx.fail(f"backward returned no {name} gradient ({_where(ctx)})")
    if like is not None and (value.shape != like.shape or value.dtype != like.dtype):
        ctx.fail(f"the input gradient has shape {value.shape} and dtype {dtype_name(value.dtype)}, expected "
                 f"the input's shape {like.shape} and dtype {dtype_name(like.dtype)}")
    return value.astype(np.float64)


def _where(ctx: CheckContext) -> str:
    params = ", ".join(f"{k}={v!r}" for k, v in ctx.case.params.items())
    return (f"{ctx.case.layer}({params}), {ctx.case.dtype}, {ctx.case.mode} mode after "
            f"{ctx.case.scenario['warmup']} training call(s), input shape {ctx.case.shape}")


CHECKS = {"gradient-mask": gradient_mask, "gradient-reference": gradient_reference}
