"""Generic torch.nn.Module behaviour of the layers the torch backend drives, as
PyTorch's own generic module tests check it: state_dict round trip, pickle and
deepcopy, repr and str, and dtype= and device= reaching every parameter and buffer.

These are properties of torch's module system, not of the backend API (a numpy or
CUDA-kernel backend has no state_dict, pickling protocol or repr to conform to), so
they live here rather than in specs/. The parameters, shapes, dtypes and inputs are
drawn from the same spec domains the conformance clauses use.
"""

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnconform.spec import load_specs
from nnconform.strategies import draw_case

torch = pytest.importorskip("torch")
from nnconform.backends.torch_backend import TorchBackend, to_numpy, to_tensor  # noqa: E402

SPECS = load_specs()
# The clauses whose domains vary every constructor parameter of their family.
CLAUSES = {"Dropout": SPECS.by_id("dropout.inplace"), "BatchNorm1d": SPECS.by_id("batchnorm.train.output"),
           "BatchNorm2d": SPECS.by_id("batchnorm.train.output"), "BatchNorm3d": SPECS.by_id("batchnorm.train.output")}
BACKEND = TorchBackend()
EXAMPLES = settings(max_examples=15, deadline=None, database=None)


def draw_trained_module(data):
    """A module built from drawn spec parameters, after a few drawn training calls."""
    layer = data.draw(st.sampled_from(sorted(CLAUSES)), label="layer")
    clause = CLAUSES[layer]
    dtype = data.draw(st.sampled_from(clause.input.dtypes), label="dtype")
    case = draw_case(data, clause, layer, dtype)
    module = BACKEND.build(layer, case.params, dtype).module
    module.train()
    with torch.no_grad():
        for index in range(data.draw(st.integers(0, 3), label="training calls")):
            module(to_tensor(case.warmup_batch(index), "cpu"))
    return module, case


def outputs(module, case, seed: int) -> list[np.ndarray]:
    """Outputs of one train-mode and one eval-mode call from the same RNG seed, on
    copies of the module so that it is left as it was."""
    results = []
    for mode in (True, False):
        clone = copy.deepcopy(module).train(mode)
        torch.manual_seed(seed)
        with torch.no_grad():
            results.append(to_numpy(clone(to_tensor(case.batch(10), "cpu"))))
    return results


def assert_same_module(original, restored, case):
    assert type(restored) is type(original)
    assert restored.training == original.training
    for (name, want), (other, got) in zip(original.state_dict().items(), restored.state_dict().items()):
        assert name == other
        assert got.dtype == want.dtype and torch.equal(got, want), f"{name} differs after the round trip"
    for want, got in zip(outputs(original, case, case.seed), outputs(restored, case, case.seed)):
        np.testing.assert_array_equal(got, want)


@EXAMPLES
@given(data=st.data())
def test_state_dict_round_trip_gives_identical_outputs(data):
    module, case = draw_trained_module(data)
    fresh = BACKEND.build(case.layer, case.params, case.dtype).module
    fresh.load_state_dict(module.state_dict())
    assert_same_module(module, fresh, case)


@EXAMPLES
@given(data=st.data(), how=st.sampled_from(["pickle", "deepcopy"]))
def test_pickle_and_deepcopy_give_an_identical_module(data, how):
    module, case = draw_trained_module(data)
    restored = pickle.loads(pickle.dumps(module)) if how == "pickle" else copy.deepcopy(module)
    assert_same_module(module, restored, case)


@EXAMPLES
@given(data=st.data())
def test_repr_and_str_name_the_class_and_every_constructor_parameter(data):
    module, case = draw_trained_module(data)
    text = repr(module)
    assert str(module) == text
    assert text.startswith(f"{case.layer}(")
    if case.layer == "Dropout":
        assert f"p={case.params['p']}" in text and f"inplace={case.params['inplace']}" in text
    else:
        assert text.startswith(f"{case.layer}({case.params['num_features']}, eps={case.params['eps']}, ")
        for name in ("momentum", "affine", "track_running_stats"):
            assert f"{name}={case.params[name]}" in text, f"{name} is missing from {text}"


@EXAMPLES
@given(data=st.data())
def test_dtype_and_device_reach_every_parameter_and_buffer(data):
    module, case = draw_trained_module(data)
    want = getattr(torch, case.dtype)
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        assert tensor.device.type == BACKEND.device, f"{name} is on {tensor.device}"
        if name == "num_batches_tracked":
            assert tensor.dtype == torch.long, f"{name} is {tensor.dtype}, expected an integer count"
        else:
            assert tensor.dtype == want, f"{name} is {tensor.dtype}, expected {want}"
