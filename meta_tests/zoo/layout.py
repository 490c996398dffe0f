"""Layout faults: batch statistics taken along the wrong axis."""

from __future__ import annotations

import numpy as np

from meta_tests.zoo.base import NumpyBatchNorm, ZooBackend


class _AxisBySize(NumpyBatchNorm):
    def channel_axis(self, x):
        return x.shape.index(self.params["num_features"])


class ChannelAxisFoundBySize(ZooBackend):
    """The channel axis is found as the first axis whose size equals num_features:
    right unless the batch size equals the channel count."""
    name = "channel-axis-found-by-size"
    batchnorm_class = _AxisBySize


class _GuessesChannelsLast(NumpyBatchNorm):
    def channel_axis(self, x):
        return x.ndim - 1 if x.ndim > 2 and x.shape[-1] == self.params["num_features"] else 1


class ChannelsLastGuessed(ZooBackend):
    """Inputs whose last axis has num_features entries are taken as channels-last:
    wrong whenever the last spatial axis happens to equal the channel count."""
    name = "channels-last-guessed"
    batchnorm_class = _GuessesChannelsLast


class _FlatChannels(NumpyBatchNorm):
    def to_channels_second(self, x):
        return np.reshape(x, (x.shape[0], x.shape[1], -1), order="F").reshape(x.shape)


class FortranOrderReshape(ZooBackend):
    """The input buffer is reinterpreted in column-major order (a stride bug when
    copying into a kernel's layout): the values of different channels are mixed
    whenever an axis after the batch has more than one entry."""
    name = "fortran-order-reshape"
    batchnorm_class = _FlatChannels


def _as_if_contiguous(x: np.ndarray) -> np.ndarray:
    """x's memory read with C-contiguous strides, whatever its real strides are."""
    strides = tuple(int(np.prod(x.shape[i + 1:])) * x.itemsize for i in range(x.ndim))
    return np.lib.stride_tricks.as_strided(x, shape=x.shape, strides=strides, writeable=False)


class _RawBuffer(NumpyBatchNorm):
    def to_channels_second(self, x):
        return _as_if_contiguous(x)


class StridesIgnored(ZooBackend):
    """The input's buffer is read as if it were C-contiguous (a data pointer handed
    to a kernel without checking strides): strided and channels-last inputs are
    misread."""
    name = "strides-ignored"
    batchnorm_class = _RawBuffer
