"""The zoo's baseline for the channel-dropout, alpha-dropout and feature-alpha-dropout
families: one small, correct numpy layer whose work is split into overridable methods
(the unit's noise shape, the mask, the values a dropped and a kept unit take, applying
them, eval, delivery, backward), so that each faulty member overrides one of them.

As the zoo's dropout baseline, it computes in float32 for 16- and 32-bit inputs and in
float64 for float64, and must pass every clause of the three families.
"""

from __future__ import annotations

import math

import numpy as np

from meta_tests.zoo.base import BATCHNORMS, NumpyDropout, ZooBackend, work_dtype
from nnconform.backend_api import Capabilities

ALPHA_PRIME = -1.7580993408473766      # SELU's negative saturation, -scale * alpha
# The input ranks each channel layer reads as (N, C, ...); other ranks have no batch axis.
BATCHED_RANKS = {"Dropout1d": (3,), "Dropout2d": (3, 4), "Dropout3d": (5,), "FeatureAlphaDropout": (5,)}
ALPHA_LAYERS = ("AlphaDropout", "FeatureAlphaDropout")
RANDOM_LAYERS = ("Dropout1d", "Dropout2d", "Dropout3d") + ALPHA_LAYERS


def alpha_values(p: float) -> tuple[float, float, float]:
    """(dropped, a, b) of alpha dropout: a dropped unit is a*alpha' + b, a kept one a*x + b."""
    if p >= 1.0:
        return 0.0, 0.0, 0.0
    a = ((1.0 - p) * (1.0 + p * ALPHA_PRIME ** 2)) ** -0.5
    return ALPHA_PRIME * math.sqrt((1.0 - p) / (1.0 + p * ALPHA_PRIME ** 2)), a, -a * ALPHA_PRIME * p


class NumpyRandomLayer(NumpyDropout):
    """Dropout1d/2d/3d (whole channels, 0 or x/(1-p)), AlphaDropout (elements) and
    FeatureAlphaDropout (whole channels, alpha dropout's values)."""

    def __init__(self, layer: str, params: dict, backend: "RandomZooBackend"):
        super().__init__(params, backend)
        self.layer = layer

    @property
    def alpha(self) -> bool:
        return self.layer in ALPHA_LAYERS

    def batched(self, shape: tuple[int, ...]) -> bool:
        return len(shape) in BATCHED_RANKS.get(self.layer, ())

    def noise_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """One draw per unit: (N, C, 1, ...) or, without a batch axis, (C, 1, ...)."""
        if self.layer not in BATCHED_RANKS:
            return shape
        lead = 2 if self.batched(shape) else 1
        return shape[:lead] + (1,) * (len(shape) - lead)

    def keep_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(self.backend.rng.random(self.noise_shape(shape)) >= self.p, shape)

    def values(self, p: float) -> tuple[float, float, float]:
        """(dropped, scale, shift): a dropped unit's value; a kept one is scale * x + shift."""
        if self.alpha:
            return alpha_values(p)
        return 0.0, (0.0 if p >= 1.0 else 1.0 / (1.0 - p)), 0.0

    def apply(self, x: np.ndarray, keep: np.ndarray) -> np.ndarray:
        work = work_dtype(x.dtype)
        dropped, scale, shift = self.values(self.p)
        return np.where(keep, x.astype(work) * work(scale) + work(shift), work(dropped)).astype(x.dtype)

    def backward(self, grad_output: np.ndarray) -> dict:
        keep, p = self._last
        scale = self.values(p)[1]
        grad = np.where(keep, grad_output.astype(np.float64) * scale, 0.0)
        return {"input": grad.astype(grad_output.dtype)}


class RandomZooBackend(ZooBackend):
    """The zoo baseline with the channel and alpha dropout layers added."""
    name = "zoo-random-baseline"
    random_class = NumpyRandomLayer

    def __init__(self):
        super().__init__()
        self.capabilities = Capabilities(layers=frozenset(("Dropout",) + BATCHNORMS + RANDOM_LAYERS), autograd=True)

    def validate(self, layer: str, params: dict) -> None:
        if layer in RANDOM_LAYERS and not 0.0 <= params["p"] <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {params['p']}")
        super().validate(layer, params)

    def build(self, layer: str, params: dict, dtype: str):
        if layer in RANDOM_LAYERS:
            self.validate(layer, params)
            return self.random_class(layer, dict(params), self)
        return super().build(layer, params, dtype)
