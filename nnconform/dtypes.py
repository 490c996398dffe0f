"""Dtype names used in spec files, and their numpy dtypes (bfloat16 via ml_dtypes).

ml_dtypes is imported on first use of a numpy dtype, not with this module: its import
costs about a second, and loading specs (an xdist controller does nothing else) needs
only each dtype's epsilon and largest value, which are fixed by the formats.
"""

from __future__ import annotations

import functools

import numpy as np

NAMES = ("float16", "bfloat16", "float32", "float64")
_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
_MAX = {"float16": 65504.0, "bfloat16": float.fromhex("0x1.fep127"),
        "float32": float.fromhex("0x1.fffffep127"), "float64": float.fromhex("0x1.fffffffffffffp1023")}


@functools.cache
def _numpy_dtypes() -> dict[str, np.dtype]:
    import ml_dtypes
    return {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16),
            "float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def __getattr__(name: str):
    if name == "NUMPY_DTYPES":  # the spec name -> numpy dtype table, built on first use
        return _numpy_dtypes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def numpy_dtype(name: str) -> np.dtype:
    return _numpy_dtypes()[name]


def dtype_name(dtype: np.dtype) -> str:
    """The spec name of a numpy dtype, or its numpy name when the spec has none."""
    dtype = np.dtype(dtype)
    for name, candidate in _numpy_dtypes().items():
        if candidate == dtype:
            return name
    return str(dtype)


def accumulation_eps(name: str) -> float:
    """The epsilon of the precision a conforming layer accumulates in: float32 for
    16- and 32-bit inputs, float64 for float64."""
    return float(np.finfo(np.float64 if name == "float64" else np.float32).eps)


def dtype_eps(name: str) -> float:
    """Machine epsilon of a spec dtype (2**-10 float16, 2**-7 bfloat16, ...)."""
    return _EPS[name]


def dtype_max(name: str) -> float:
    """The largest finite value of a spec dtype (65504 for float16)."""
    return _MAX[name]
