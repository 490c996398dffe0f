"""Correct alternative implementations. Each differs from the usual one in a way
the specs allow, so each must pass every clause; a clause that fails one of them
is wrong, or its tolerance is."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, NumpyDropout, ZooBackend, work_dtype
from nnconform.backends.torch_backend import TorchBackend, TorchLayer, to_numpy, to_tensor, torch


class Baseline(ZooBackend):
    """The zoo's numpy baseline itself: float32 work for 16- and 32-bit inputs,
    state stored in the layer dtype."""
    name = "baseline"


class PhiloxStream(ZooBackend):
    """A different random stream: counter-based Philox instead of PCG64, and the
    mask drawn as integers against a 2**32 threshold instead of floats."""
    name = "philox-stream"

    def make_rng(self, seed):
        return np.random.Generator(np.random.Philox(key=seed))

    class dropout_class(NumpyDropout):
        def keep_mask(self, shape):
            threshold = np.uint64(round(self.p * 2**32))
            return self.backend.rng.integers(0, 2**32, size=shape, dtype=np.uint64) >= threshold


class _Float64BatchNorm(NumpyBatchNorm):
    def __init__(self, layer, params, dtype):
        super().__init__(layer, params, dtype)
        self.work = np.float64


class _Float64Dropout(NumpyDropout):
    def apply(self, x, keep):
        return np.where(keep, x.astype(np.float64) / (1.0 - self.p) if self.p < 1 else 0.0, 0.0).astype(x.dtype)


class Float64Internals(ZooBackend):
    """Every dtype computed in float64 and cast back once at the end."""
    name = "float64-internals"
    dropout_class = _Float64Dropout
    batchnorm_class = _Float64BatchNorm


class _FusedScaleShift(NumpyBatchNorm):
    def normalize(self, x, mean, var):
        scale = 1.0 / np.sqrt(var + self.work(self.params["eps"]))
        shift = -mean * scale
        if self.buffers["weight"] is not None:
            weight, bias = self.buffers["weight"].astype(self.work), self.buffers["bias"].astype(self.work)
            scale, shift = scale * weight, shift * weight + bias
        return x * self.broadcast(scale, x.ndim) + self.broadcast(shift, x.ndim)

    def batch_statistics(self, x):
        """Welford-free two-pass statistics from per-channel sums over a
        channels-first flattening: the same values, summed in another order."""
        flat = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
        count = flat.shape[1]
        mean = flat.sum(axis=1, dtype=np.float64).astype(self.work) / self.work(count)
        centered = flat - mean[:, None]
        var = np.einsum("ij,ij->i", centered, centered) / self.work(count)
        return mean, var, count


class _MaskThenScale(NumpyDropout):
    def apply(self, x, keep):
        work = work_dtype(x.dtype)
        scaled_mask = keep.astype(work) * work(self.scale())
        return (x.astype(work) * scaled_mask).astype(x.dtype)


class ReorderedOperations(ZooBackend):
    """An exact reordering: batch norm as one fused x*scale + shift (the way
    inference kernels fold it) with sums taken in a different order; dropout as
    x times a pre-scaled mask."""
    name = "reordered-operations"
    dropout_class = _MaskThenScale
    batchnorm_class = _FusedScaleShift


class _ChannelsLast(NumpyBatchNorm):
    def batch_statistics(self, x):
        last = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        flat = last.reshape(-1, x.shape[1])
        mean = flat.mean(axis=0)
        var = ((flat - mean) ** 2).mean(axis=0)
        return mean, var, flat.shape[0]

    def normalize(self, x, mean, var):
        last = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        y = (last - mean) / np.sqrt(var + self.work(self.params["eps"]))
        if self.buffers["weight"] is not None:
            y = y * self.buffers["weight"].astype(self.work) + self.buffers["bias"].astype(self.work)
        return np.moveaxis(y, -1, 1)


class ChannelsLastInternally(ZooBackend):
    """Batch norm computed on a channels-last copy of the input and moved back."""
    name = "channels-last-internally"
    batchnorm_class = _ChannelsLast


class TorchChannelsLast(TorchBackend):
    """torch.nn itself, fed channels_last tensors for 4- and 5-dimensional inputs
    (the memory format convolutional networks run in)."""
    name = "torch-channels-last"

    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        return _ChannelsLastTorchLayer(built.module, built.device) if layer != "Dropout" else built


class _ChannelsLastTorchLayer(TorchLayer):
    def forward(self, x):
        if x.ndim not in (4, 5) or self.requires_grad:
            return super().forward(x)
        fmt = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
        tensor = to_tensor(x, self.device).to(memory_format=fmt)
        with torch.no_grad():
            out = self.module(tensor)
        return np.ascontiguousarray(to_numpy(out))
