"""Gradient checks, for backends that declare autograd.

The layer runs one forward call with ``requires_grad`` set, then ``backward`` with
a grad_output the check chooses; the gradients are judged against the float64
reference run on exactly what the layer had: the input rounded to its dtype, the
layer's state before the call, and (for dropout) the mask of that same call, read
off its output.
"""

from __future__ import annotations

import numpy as np

from nnconform.checks.context import CheckContext, check_finite, describe_positions
from nnconform.checks.reference_checks import compare_with_reference, state_as_float64
from nnconform.dtypes import dtype_name, numpy_dtype
from nnconform.reference import BACKWARDS, batch_statistics, dropout_backward
from nnconform.reference.batchnorm import per_channel

GRADIENTS = ("input", "weight", "bias")


def _nonzero_input(ctx: CheckContext, index: int) -> np.ndarray:
    """A drawn input with exact zeros set to 1, so a dropped unit is told from a kept
    zero by its output."""
    x = ctx.case.batch(index)
    return np.where(x.astype(np.float64) == 0, np.ones_like(x), x)


def gradient_mask(ctx: CheckContext) -> None:
    """d input = grad_output * keep / (1-p) for the mask of the same forward call in
    train mode, grad_output itself in eval mode; no weight or bias gradient."""
    case = ctx.case
    layer = ctx.prepare()
    ctx.require_grad(layer)
    x = _nonzero_input(ctx, 0)
    out = ctx.forward(layer, x.copy())
    grad_output = case.batch(1)
    grads = ctx.backward(layer, grad_output)
    p = case.params["p"]
    if case.mode == "train":
        keep = out.astype(np.float64) != 0
        want = dropout_backward(keep, p, grad_output)["input"]
        how = f"grad_output * mask / (1-p) with the forward call's mask ({int(keep.sum())} of {keep.size} kept)"
    else:
        want, how = grad_output.astype(np.float64), "grad_output (eval mode is the identity)"
    for name in ("weight", "bias"):
        if grads.get(name) is not None:
            ctx.fail(f"backward returned a {name} gradient of shape {np.shape(grads[name])}, but "
                     f"{case.layer} has no {name}")
    got = _gradient(ctx, grads, "input", x)
    tol = ctx.clause.tolerances[case.dtype]
    check_finite(ctx, "input gradient", got, want)
    wrong = ~(np.abs(got - want) <= tol.atol + tol.rtol * np.abs(want))
    if wrong.any():
        first = tuple(np.argwhere(wrong)[0])
        ctx.fail(f"input gradient is not {how} in {describe_positions(wrong)}; first at {first}: got {got[first]:.9g}, "
                 f"expected {want[first]:.9g} for grad_output {float(grad_output[first]):.9g} and output "
                 f"{float(out[first]):.9g} (p={p!r}, {case.mode} mode, {case.dtype}, rtol {tol.rtol:g})")


def gradient_reference(ctx: CheckContext) -> None:
    """Input, weight and bias gradients of one call after `warmup` training calls,
    against the float64 reference's, in the case's mode."""
    case = ctx.case
    layer = ctx.prepare()
    warmup = case.scenario["warmup"]
    ctx.require_grad(layer)
    before = state_as_float64(ctx.state(layer))
    x = case.batch(warmup)
    ctx.forward(layer, x.copy())
    x64 = x.astype(np.float64)
    grad_output = _grad_output(ctx, x64, warmup + 1)
    grads = ctx.backward(layer, grad_output)
    training = case.mode == "train"
    try:
        want = BACKWARDS[case.layer](x64, before, case.params, training, grad_output.astype(np.float64))
    except Exception as error:
        ctx.fail(f"the reference could not run from the backend's state: {type(error).__name__}: {error}")
    scales = gradient_error_scales(x64, before, case.params, training, grad_output.astype(np.float64))
    for name in GRADIENTS:
        if want[name] is None:
            if grads.get(name) is not None:
                ctx.fail(f"backward returned a {name} gradient of shape {np.shape(grads[name])}, "
                         f"but the layer has no {name} ({_where(ctx)})")
            continue
        scale = scales[name]
        compare_with_reference(ctx, f"{name} gradient ({case.mode} mode, {case.scenario['warmup']} warmup call(s))",
                               _gradient(ctx, grads, name, x if name == "input" else None), want[name], (scale, scale))


def _grad_output(ctx: CheckContext, x64: np.ndarray, index: int) -> np.ndarray:
    """1 + xhat + noise, in the input's dtype. Its per-channel mean and its
    correlation with xhat are both of order one, so a backward that treats the batch
    mean or the batch variance as constants is off by order one, not by the
    1/sqrt(count) an independent zero-mean grad_output would leave."""
    mean, var, _ = batch_statistics(x64)
    xhat = (x64 - per_channel(mean, x64.ndim)) / np.sqrt(per_channel(var, x64.ndim) + 1e-12)
    noise = np.random.default_rng([ctx.case.value_seed, index]).standard_normal(x64.shape)
    return (1.0 + xhat + noise).astype(numpy_dtype(ctx.case.dtype))


def gradient_error_scales(x: np.ndarray, before: dict, params: dict, training: bool, grad: np.ndarray) -> dict:
    """Per gradient, the scale S of the error a conforming layer may make, so that the
    allowed error is (rounding * eps_dtype + accumulation * eps_acc) * S.

    Each gradient is a sum of terms; S is the sum of their magnitudes (for the input
    gradient, of one channel's largest), times the condition number of subtracting
    the mean, 1 + max|x_c| * inv_std_c: an ulp of the largest input, divided by the
    spread, is the error of xhat.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    use_batch = training or before.get("running_mean") is None
    mean, var = batch_statistics(x)[:2] if use_batch else (before["running_mean"], before["running_var"])
    inv_std = 1.0 / np.sqrt(np.maximum(var, 0) + params["eps"])
    xhat = np.abs(x - per_channel(mean, x.ndim)) * per_channel(inv_std, x.ndim)
    condition = 1.0 + np.abs(x).max(axis=axes) * inv_std
    gain = 1.0 if before.get("weight") is None else np.abs(before["weight"])
    largest_grad = np.abs(grad).max(axis=axes)
    input_scale = gain * inv_std * largest_grad * (1.0 + xhat.max(axis=axes)) * condition
    return {"input": per_channel(input_scale, x.ndim),
            "weight": (np.abs(grad) * (1.0 + xhat)).sum(axis=axes) * condition,
            "bias": np.abs(grad).sum(axis=axes)}


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
