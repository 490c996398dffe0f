"""Dtype names used in spec files, and their numpy dtypes (bfloat16 via ml_dtypes)."""

from __future__ import annotations

import ml_dtypes
import numpy as np

NUMPY_DTYPES = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


def numpy_dtype(name: str) -> np.dtype:
    return NUMPY_DTYPES[name]


def dtype_name(dtype: np.dtype) -> str:
    """The spec name of a numpy dtype, or its numpy name when the spec has none."""
    dtype = np.dtype(dtype)
    for name, candidate in NUMPY_DTYPES.items():
        if candidate == dtype:
            return name
    return str(dtype)


def accumulation_eps(name: str) -> float:
    """The epsilon of the precision a conforming layer accumulates in: float32 for
    16- and 32-bit inputs, float64 for float64."""
    return float(np.finfo(np.float64 if name == "float64" else np.float32).eps)


def dtype_eps(name: str) -> float:
    """Machine epsilon of a spec dtype (2**-10 float16, 2**-7 bfloat16, ...)."""
    return float(ml_dtypes.finfo(numpy_dtype(name)).eps)


def dtype_max(name: str) -> float:
    """The largest finite value of a spec dtype (65504 for float16)."""
    return float(ml_dtypes.finfo(numpy_dtype(name)).max)

