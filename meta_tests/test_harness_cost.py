"""The suite's per-example harness cost has not regressed.

Measured as a ratio within this process (benchmarks/harness_cost.py): CPU time
per example on a fixed selection of items, over the CPU time of a fixed numpy
workload. The test fails when the ratio is more than twice the committed baseline
(benchmarks/harness_cost_baseline.json); a deliberate cost is recorded by
rewriting the baseline with `python -m benchmarks.harness_cost --update`.
"""

import pytest

from benchmarks import harness_cost

torch = pytest.importorskip("torch")
from nnconform.backends.torch_backend import TorchBackend  # noqa: E402


def test_harness_cost_per_example_within_twice_the_baseline():
    baseline = harness_cost.load_baseline()
    assert baseline["selection"] == list(harness_cost.SELECTION) and baseline["max_examples"] == harness_cost.MAX_EXAMPLES, (
        "benchmarks/harness_cost_baseline.json was measured on another selection; rewrite it with "
        "python -m benchmarks.harness_cost --update")
    measured = harness_cost.measure()
    print(f"harness cost: {measured['ratio']} numpy workloads per example (baseline {baseline['ratio']}); "
          f"{measured['suite_ms_per_example']} ms per example")
    problem = harness_cost.regression(measured, baseline)
    assert problem is None, problem


class SlowBuild(TorchBackend):
    """A torch backend whose every build() also runs two numpy workloads: a harness
    that does needless work per example."""

    def build(self, layer, params, dtype):
        harness_cost.numpy_workload()
        harness_cost.numpy_workload()
        return super().build(layer, params, dtype)


def test_the_guard_catches_a_slower_harness():
    """Measured the same way on two items, a harness that spends more than the
    ratio's worth of extra work per example trips the guard; the plain one does not."""
    selection, options = harness_cost.SELECTION[:2], dict(max_examples=4, rounds=2)
    plain = harness_cost.measure(TorchBackend(), selection, **options)
    slow = harness_cost.measure(SlowBuild(), selection, **options)
    assert harness_cost.regression(plain, {"ratio": plain["ratio"]}) is None
    message = harness_cost.regression(slow, {"ratio": plain["ratio"]})
    assert message is not None and "regressed" in message, (plain, slow)
