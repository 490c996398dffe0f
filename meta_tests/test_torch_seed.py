"""The torch backends' seed() alone determines every dropout mask.

TorchBackend.seed seeds only the CPU generator (torch.manual_seed also seeds the
CUDA, MPS, XPU and MTIA generators, at a cost that dominated short examples).
These tests prove that narrowing loses nothing: after seed(s), the mask is the
same whatever ran before, and a different s gives a different mask.
"""

import numpy as np
import pytest

from nnconform.dtypes import numpy_dtype

torch = pytest.importorskip("torch")
from nnconform.backends.torch_backend import TorchBackend, TorchCudaBackend  # noqa: E402

DTYPES = ("float64", "float32", "float16", "bfloat16")
SIZE = 4096  # the chance that two independent p=0.5 masks agree is 2**-4096


def mask(backend, dtype: str, seed: int, disturb=None) -> np.ndarray:
    """The kept-unit mask of one train-mode dropout call right after seed(seed);
    `disturb` runs between the seed and the call if given, to show that nothing
    run before the build (or the global torch seed) matters."""
    if disturb is not None:
        disturb()
    backend.seed(seed)
    layer = backend.build("Dropout", {"p": 0.5, "inplace": False}, dtype)
    layer.train()
    x = np.ones(SIZE, dtype=numpy_dtype(dtype))
    return layer.forward(x).astype(np.float64) != 0


def disturbances(device: str):
    """Things a previous example may have done to torch's random state."""
    return [
        None,
        lambda: torch.rand(1000, device=device),  # advanced the generator
        lambda: torch.manual_seed(12345),  # seeded every generator, another way
        lambda: torch.nn.functional.dropout(torch.ones(777, device=device), 0.3, True),
    ]


def assert_seed_determines_mask(backend, dtype: str) -> None:
    first = mask(backend, dtype, 2024)
    assert 0 < first.sum() < SIZE, "the p=0.5 mask kept none or all of its units: not a dropout draw"
    for number, disturb in enumerate(disturbances(backend.device)):
        again = mask(backend, dtype, 2024, disturb)
        assert np.array_equal(first, again), (
            f"{backend.name} {dtype}: seed(2024) gave a different mask after disturbance {number}")
    for other in (2025, 0, 2**32 - 1):
        assert not np.array_equal(first, mask(backend, dtype, other)), (
            f"{backend.name} {dtype}: seed({other}) gave the same mask as seed(2024)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_seed_determines_dropout_mask(dtype):
    assert_seed_determines_mask(TorchBackend(), dtype)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_seed_determines_dropout_mask(dtype):
    assert_seed_determines_mask(TorchCudaBackend(), dtype)


def test_seed_catches_a_backend_that_ignores_it():
    """The test above fails for a seed() that does nothing or ignores its value."""
    class Unseeded(TorchBackend):
        def seed(self, seed):
            pass

    class ConstantSeed(TorchBackend):
        def seed(self, seed):
            torch.default_generator.manual_seed(7)

    for broken in (Unseeded(), ConstantSeed()):
        with pytest.raises(AssertionError):
            assert_seed_determines_mask(broken, "float32")
