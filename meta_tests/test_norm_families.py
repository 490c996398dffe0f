"""What the group- and instance-norm families needed from the generic core: reference
functions per layer, warmup batches for unbatched inputs, and overflow within the
allowed error."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nnconform.backends.reference_backend import ReferenceBackend
from nnconform.checks import CheckContext, ClauseFailure
from nnconform.checks.reference_checks import compare_with_reference
from nnconform.family import FamilyError
from nnconform.reference import instancenorm
from nnconform.spec import SpecError, default_spec_dir, load_specs
from nnconform.strategies import Case

SPECS = load_specs()
INSTANCE = SPECS.by_id("instancenorm.train.output").model
PARAMS = {"num_features": 3, "eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False,
          "bias": True}


def test_each_instance_norm_layer_has_its_own_reference_functions():
    for rank in (1, 2, 3):
        assert INSTANCE.step_for(f"InstanceNorm{rank}d") is getattr(instancenorm, f"step{rank}d")
        assert INSTANCE.backward_for(f"InstanceNorm{rank}d") is getattr(instancenorm, f"backward{rank}d")
    with pytest.raises(FamilyError, match="one step per layer"):
        INSTANCE.step
    with pytest.raises(FamilyError, match="one backward per layer"):
        INSTANCE.backward


def test_a_per_layer_reference_table_must_name_every_layer(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(default_spec_dir(), specs)
    path = specs / "instancenorm.toml"
    text = path.read_text()
    old = ', InstanceNorm3d = "nnconform.reference.instancenorm:step3d" }'
    assert text.count(old) == 1
    path.write_text(text.replace(old, " }"))
    with pytest.raises(SpecError) as raised:
        load_specs(specs)
    assert raised.value.field == "reference.step" and "InstanceNorm3d" in raised.value.problem
    assert raised.value.path.endswith("instancenorm.toml")


def test_the_reference_backend_runs_each_layer_with_its_own_step():
    """The same (3, 4, 5) array is an unbatched InstanceNorm2d input (3 channels of
    4x5) and a batched InstanceNorm1d one (3 samples of 4 channels): each layer must
    normalize it its own way."""
    backend = ReferenceBackend(SPECS)
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    as_2d = backend.build("InstanceNorm2d", PARAMS, "float64").forward(x)
    as_1d = backend.build("InstanceNorm1d", dict(PARAMS, num_features=4), "float64").forward(x)
    assert np.allclose(as_2d.mean(axis=(1, 2)), 0) and np.allclose(as_2d.var(axis=(1, 2)), 1, rtol=1e-3)
    assert np.allclose(as_1d.mean(axis=2), 0) and np.allclose(as_1d.var(axis=2), 1, rtol=1e-3)
    assert not np.allclose(as_1d, as_2d)


def test_unbatched_warmup_batches_keep_the_input_shape():
    """A batched warmup batch has one more sample; an unbatched input has no sample
    axis to grow (growing axis 0 would change its channel count)."""
    def case(batched):
        return Case("InstanceNorm1d", "float32", "eval", PARAMS, {"calls": 1, "warmup": 1}, (3, 5), "standard",
                    0, 0, batched=batched)
    assert case(False).warmup_batch(0).shape == (3, 5)
    assert case(True).warmup_batch(0).shape == (4, 5)


def _judge(got: float, want: float) -> None:
    clause = SPECS.by_id("instancenorm.train.output")
    case = Case("InstanceNorm1d", "float16", "train", PARAMS, {"calls": 1, "warmup": 0}, (1, 2, 2), "standard", 0, 0)
    compare_with_reference(CheckContext(clause, case, backend=None), "output",
                           np.array([got, 1.0], dtype=np.float16), np.array([want, 1.0]), (np.zeros(2), np.zeros(2)))


def test_inf_is_accepted_where_the_allowed_error_reaches_beyond_float16():
    """65400 is finite in float16, but a result within rtol 2e-3 of it (up to 65531)
    rounds to inf: a conforming layer may return inf there."""
    _judge(np.inf, 65400.0)


def test_inf_still_fails_where_the_allowed_error_stays_within_float16():
    with pytest.raises(ClauseFailure, match="non-finite"):
        _judge(np.inf, 65000.0)
