"""What a conformance run costs, and what its statistical guarantees cost.

    python benchmarks/run.py [--repeats 3] [--out benchmarks/results] [--markdown benchmarks/RESULTS.md]

Uses only public tools: each run is a plain `python -m pytest` subprocess timed with
time.perf_counter, and per-item figures come from the suite's own JSON report
(--conformance-json). It measures:

- the full default run against torch on the CPU with -n 0 and -n 2 (median of
  --repeats runs each, all with the same --seed) and their ratio;
- the 10 slowest items;
- per statistical clause, the samples each decision drew against the theoretical
  minimum fixed-sample n for its alpha, power and delta (normal approximation);
- examples per second for the reference and torch backends;
- torch-cuda, where a CUDA GPU is available.

It writes a JSON results file with the machine description and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics as pystats
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from scipy.stats import norm

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261125


def run_suite(backend: str, workers: int, report: Path, extra: list[str] = ()) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers),
               "--backend", backend, "--seed", str(SEED), f"--conformance-json={report}", *extra]
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode not in (0,):
        tail = "\n".join(finished.stdout.splitlines()[-15:])
        raise SystemExit(f"benchmark run failed (exit {finished.returncode}): {' '.join(command)}\n{tail}")
    return seconds


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cores": os.cpu_count(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def minimum_n(test: str, p: float, alpha: float, delta: float, power: float) -> int | None:
    """The fixed-sample n a one-decision test needs at this alpha, power and effect,
    by the normal approximation n = ((z_a sqrt(p0 q0) + z_b sqrt(p1 q1)) / effect)^2."""
    z_beta = norm.isf(1 - power)
    q = 1 - p
    if p <= 0 or p >= 1:
        return None
    if "uniformity" in test:  # one favoured position, tested alone: calls for a rate error of delta
        return minimum_n("drop rate", p, alpha, delta, power)
    if "serial" in test:  # one lag tested alone on disjoint pairs: two units per pair
        return 2 * minimum_n("agreement", p, alpha, delta, power)
    if "drop rate" in test:
        z = norm.isf(alpha / 2)
        candidates = [p1 for p1 in (p - delta, p + delta) if 0 < p1 < 1]
        return max(math.ceil(((z * math.sqrt(p * q) + z_beta * math.sqrt(p1 * (1 - p1))) / delta) ** 2)
                   for p1 in candidates)
    if "agreement" in test or "across" in test:
        p0 = p * p + q * q
        p1 = p0 + 2 * p * q * delta
        z = norm.isf(alpha)
        return math.ceil(((z * math.sqrt(p0 * (1 - p0)) + z_beta * math.sqrt(p1 * (1 - p1))) / (p1 - p0)) ** 2)
    if "mean" in test:
        sigma = math.sqrt(p / q)  # standard deviation of y/x under a correct layer
        return math.ceil(((norm.isf(alpha / 2) + z_beta) * sigma / delta) ** 2)
    return None


def statistical_rows(report: dict, specs) -> list[dict]:
    rows = {}
    for item in report["items"]:
        for decision in item.get("statistics") or []:
            clause = specs.by_id(item["clause"])
            stat = clause.statistics
            row = rows.setdefault(item["clause"], {"clause": item["clause"], "decisions": 0, "drawn": [],
                                                   "minimum": [], "seconds": 0.0})
            row["decisions"] += 1
            row["drawn"].append(decision["n"])
            least = minimum_n(decision["test"], float(decision.get("p", math.nan)), float(decision["alpha"]),
                              stat["delta"], stat["power"])
            if least:
                row["minimum"].append(least)
        if item.get("statistics"):
            rows[item["clause"]]["seconds"] += item.get("seconds") or 0.0
    summary = []
    for row in rows.values():
        ratios = [d / m for d, m in zip(row["drawn"], row["minimum"])] if len(row["minimum"]) == len(row["drawn"]) else []
        summary.append({
            "clause": row["clause"], "decisions": row["decisions"],
            "median_drawn": int(pystats.median(row["drawn"])),
            "median_minimum": int(pystats.median(row["minimum"])) if row["minimum"] else None,
            "median_ratio": round(pystats.median(ratios), 3) if ratios else None,
            "max_ratio": round(max(ratios), 3) if ratios else None,
            "seconds": round(row["seconds"], 2),
            "samples_per_second": round(sum(row["drawn"]) / row["seconds"]) if row["seconds"] else None,
        })
    return sorted(summary, key=lambda r: r["clause"])


def throughput(report: dict) -> dict:
    examples = sum(item.get("examples") or 0 for item in report["items"])
    seconds = sum(item.get("seconds") or 0.0 for item in report["items"])
    return {"examples": examples, "seconds": round(seconds, 2),
            "examples_per_second": round(examples / seconds, 1) if seconds else None}


def slowest(report: dict, count: int = 10) -> list[dict]:
    items = sorted(report["items"], key=lambda i: -(i.get("duration") or i.get("seconds") or 0.0))
    return [{"id": i["id"], "seconds": round(i.get("duration") or i.get("seconds") or 0.0, 3)} for i in items[:count]]


def markdown(results: dict) -> str:
    full = results["full_run"]
    lines = [
        f"# Benchmark results ({results['date']})", "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"Python {results['machine']['python']}, torch {results['machine']['torch']}. "
        f"Produced by `python benchmarks/run.py --repeats {results['repeats']}`.", "",
        "## Full default run, torch CPU", "",
        "| workers | runs (s) | median (s) |", "|---|---|---|",
        f"| -n 0 | {', '.join(f'{t:.1f}' for t in full['n0'])} | {full['median_n0']:.1f} |",
        f"| -n 2 | {', '.join(f'{t:.1f}' for t in full['n2'])} | {full['median_n2']:.1f} |", "",
        f"Speed-up with -n 2: **{full['ratio']:.2f}x**. Target: -n 2 at most 60 s.", "",
        "## 10 slowest items (-n 0, torch CPU)", "", "| item | seconds |", "|---|---|",
        *[f"| `{row['id']}` | {row['seconds']:.2f} |" for row in results["slowest"]], "",
        "## Statistical clauses: samples drawn versus the theoretical minimum", "",
        "Minimum: fixed-sample n for the decision's alpha, power 0.999 and the clause's delta, by the "
        "normal approximation; blank where no single-proportion formula applies.", "",
        "| clause | decisions | median n drawn | median minimum n | median ratio | max ratio | s | samples/s |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| `{r['clause']}` | {r['decisions']} | {r['median_drawn']:,} | "
          f"{'' if r['median_minimum'] is None else format(r['median_minimum'], ',')} | "
          f"{'' if r['median_ratio'] is None else r['median_ratio']} | {'' if r['max_ratio'] is None else r['max_ratio']} | "
          f"{r['seconds']} | {'' if r['samples_per_second'] is None else format(r['samples_per_second'], ',')} |"
          for r in results["statistical"]], "",
        "## Throughput (-n 0)", "", "| backend | examples | seconds in examples | examples/s |", "|---|---|---|---|",
        *[f"| {name} | {t['examples']} | {t['seconds']} | {t['examples_per_second']} |"
          for name, t in results["throughput"].items()], "",
        "## torch-cuda", "",
        (f"{results['cuda']['card']}: full run {results['cuda']['seconds']:.1f} s" if results.get("cuda")
         else "No CUDA GPU on this machine: not measured here."), "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--markdown", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from nnconform.spec import load_specs
    specs = load_specs()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timings = {"n0": [], "n2": []}
        reports = {}
        for repeat in range(args.repeats):
            for workers in (0, 2):
                path = tmp / f"torch-n{workers}-{repeat}.json"
                timings[f"n{workers}"].append(round(run_suite("torch", workers, path), 2))
                print(f"torch -n {workers} run {repeat + 1}: {timings[f'n{workers}'][-1]} s", flush=True)
                reports.setdefault(f"n{workers}", json.loads(path.read_text()))
        reference_path = tmp / "reference.json"
        run_suite("reference", 0, reference_path)
        reference = json.loads(reference_path.read_text())
        info = machine()
        cuda = None
        if info["cuda"]:
            cuda_path = tmp / "cuda.json"
            cuda = {"card": info["cuda"], "seconds": round(run_suite("torch-cuda", 0, cuda_path), 2),
                    "statistical": statistical_rows(json.loads(cuda_path.read_text()), specs)}
    n0, n2 = pystats.median(timings["n0"]), pystats.median(timings["n2"])
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": info,
        "repeats": args.repeats, "seed": SEED,
        "full_run": {**timings, "median_n0": n0, "median_n2": n2, "ratio": round(n0 / n2, 3)},
        "slowest": slowest(reports["n0"]),
        "statistical": statistical_rows(reports["n0"], specs),
        "throughput": {"reference": throughput(reference), "torch": throughput(reports["n0"])},
        "cuda": cuda,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = results["date"].replace(":", "").replace("+0000", "Z")
    (args.out / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
