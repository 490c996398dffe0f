"""The suite's harness cost per example, as a ratio to a fixed numpy workload timed
in the same process, so that it means the same on a fast and a slow machine.

    python -m benchmarks.harness_cost            # measure and print
    python -m benchmarks.harness_cost --update   # measure and write the baseline

The suite side runs a fixed selection of items against the torch backend through
the real Runner (draws, backend calls, checks, Hypothesis engine), with a fixed
seed, example count and alpha, so every round does the same work. Both sides are
timed in CPU seconds of this process (torch runs one thread), which a loaded
machine inflates far less than wall time; each is the minimum over interleaved
rounds. meta_tests/test_harness_cost.py fails when the ratio is more than
TOLERANCE times the committed baseline (benchmarks/harness_cost_baseline.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

BASELINE = Path(__file__).resolve().parent / "harness_cost_baseline.json"
TOLERANCE = 2.0
# One item per check kind that the default run spends most of its examples in, all
# float32 so that no dtype's cost dominates. Ids are the suite's public item ids.
SELECTION = (
    "dropout.eval.identity:Dropout:float32",
    "dropout.train.mask-values:Dropout:float32",
    "dropout.grad.mask:Dropout:float32",
    "dropout.train.drop-rate:Dropout:float32",
    "batchnorm.init.running-stats:BatchNorm1d:float32",
    "batchnorm.train.output:BatchNorm2d:float32",
    "batchnorm.eval.frozen-stats:BatchNorm3d:float32",
    "batchnorm.mode.switching:BatchNorm1d:float32",
    "batchnorm.grad.reference:BatchNorm2d:float32",
)
MAX_EXAMPLES = 10
SEED = 20261125
ALPHA = 1e-6  # fixed, so that adding clauses to the specs does not change the sample sizes
ROUNDS = 3
NUMPY_ROUNDS = 200


def numpy_workload(rounds: int = NUMPY_ROUNDS) -> float:
    """Small-array numpy work of the harness's kind (many calls on arrays of tens to
    hundreds of values): draw, round to float32, normalize per channel, compare."""
    total = 0.0
    for index in range(rounds):
        x = np.random.default_rng([SEED, index]).standard_normal((8, 3, 5)).astype(np.float32)
        wide = x.astype(np.float64)
        mean, var = wide.mean(axis=(0, 2), keepdims=True), wide.var(axis=(0, 2), keepdims=True)
        y = (wide - mean) / np.sqrt(var + 1e-5)
        total += float(np.abs(y).max()) + float(np.isclose(y, y, rtol=1e-6).all()) + float((x == 0).sum())
    return total


def selected_items(selection=SELECTION):
    from nnconform.items import all_items
    from nnconform.spec import load_specs
    by_id = {item.id: item for item in all_items(load_specs())}
    missing = [item_id for item_id in selection if item_id not in by_id]
    if missing:
        raise LookupError(f"benchmarks/harness_cost.py: SELECTION names items the specs no longer have: {missing}; "
                          "choose others and rewrite the baseline with python -m benchmarks.harness_cost --update")
    return [by_id[item_id] for item_id in selection]


def make_runner(backend, max_examples: int = MAX_EXAMPLES):
    from nnconform.runner import Runner
    return Runner(backend, "torch", SEED, max_examples, ALPHA)


def run_item(runner, item) -> int:
    """Run one item through the Runner; the number of examples it ran."""
    evidence: dict = {}
    runner.run(item, evidence)
    return evidence["examples"]


def cpu_seconds(function, *args) -> tuple[float, object]:
    started = time.process_time()
    result = function(*args)
    return time.process_time() - started, result


def measure(backend=None, selection=SELECTION, max_examples: int = MAX_EXAMPLES, rounds: int = ROUNDS) -> dict:
    """After an untimed one-example warm-up of each item (first-call imports and
    caches), `rounds` rounds in which each item runs right after a numpy workload.
    The suite's time is the sum over items of each item's fastest round; the numpy
    workload's the fastest of all its runs. Minima, since load only ever adds time."""
    if backend is None:
        from nnconform.backends.torch_backend import TorchBackend
        backend = TorchBackend()
    runner, items = make_runner(backend, max_examples), selected_items(selection)
    numpy_workload()
    warm_up = make_runner(backend, 1)
    for item in items:
        run_item(warm_up, item)
    numpy_times, item_times, examples = [], {item.id: [] for item in items}, {}
    for _ in range(rounds):
        for item in items:
            numpy_times.append(cpu_seconds(numpy_workload)[0])
            seconds, examples[item.id] = cpu_seconds(run_item, runner, item)
            item_times[item.id].append(seconds)
    examples = sum(examples.values())
    suite = sum(min(times) for times in item_times.values())
    per_example, numpy_once = suite / examples, min(numpy_times)
    return {"ratio": round(per_example / numpy_once, 4), "suite_ms_per_example": round(1000 * per_example, 3),
            "numpy_ms_per_workload": round(1000 * numpy_once, 3), "examples_per_round": examples,
            "numpy_spread": round(max(numpy_times) / numpy_once, 2),
            "item_ms_per_round": {item_id: round(1000 * min(times), 1) for item_id, times in item_times.items()}}


def load_baseline(path: Path = BASELINE) -> dict:
    return json.loads(path.read_text())


def regression(measured: dict, baseline: dict, tolerance: float = TOLERANCE) -> str | None:
    """A message when the measured ratio exceeds tolerance times the baseline's."""
    limit = tolerance * baseline["ratio"]
    if measured["ratio"] <= limit:
        return None
    return (f"harness cost per example regressed: {measured['ratio']:.3f} numpy workloads per example, "
            f"more than {tolerance:g}x the baseline {baseline['ratio']:.3f} (benchmarks/harness_cost_baseline.json). "
            f"This run: {measured['suite_ms_per_example']} ms per example, {measured['numpy_ms_per_workload']} ms "
            "per numpy workload. If the cost is meant (a new check that must do more), rewrite the baseline with "
            "python -m benchmarks.harness_cost --update and say why in the commit.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the median of --repeats measurements as the baseline")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from hypothesis import settings
    import nnconform.profiles  # noqa: F401  (registers the suite's profiles)
    settings.load_profile("ci")  # no deadline, as under pytest with the suite's plugin
    measurements = []
    for _ in range(args.repeats):
        measurements.append(measure())
        print(json.dumps(measurements[-1]), flush=True)
    chosen = sorted(measurements, key=lambda m: m["ratio"])[len(measurements) // 2]
    if args.update:
        import torch
        document = {"ratio": chosen["ratio"], "tolerance": TOLERANCE, "selection": list(SELECTION),
                    "max_examples": MAX_EXAMPLES, "seed": SEED, "alpha": ALPHA,
                    "measured": {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 "python": platform.python_version(), "torch": torch.__version__,
                                 "numpy": np.__version__, "machine": platform.machine(),
                                 "ratios": [m["ratio"] for m in measurements], **chosen}}
        BASELINE.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {BASELINE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
