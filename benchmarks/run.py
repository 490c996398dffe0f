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
- torch-cuda, where a CUDA GPU is available;
- for the first run of each worker count, where the time goes, phase by phase
  (benchmarks/phases.py, a pytest plugin that only observes), and the time per
  example by check kind, split into drawing, backend calls and checks where the
  runner records that split;
- the cost of each import a conformance process makes, in fresh interpreters;
- with --thorough, one -n 2 run of the thorough profile (200 examples per item).

It also rewrites the table of README.md's "What a run costs" (between its run-costs
markers); --readme-from RESULTS_JSON does only that, from an earlier results file.

Every run also records its CPU seconds (the process and its workers) and the load
average, since on a shared machine wall times alone can mislead.

It writes a JSON results file with the machine description and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics as pystats
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.breakdown import import_costs, per_check_kind, phases, read_timelines  # noqa: E402
from benchmarks.results_md import kept_sections, markdown, update_readme  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261125


def run_suite(backend: str, workers: int, report: Path | None, extra: list[str] = (),
              phases_path: Path | None = None) -> dict:
    """One timed run: wall and CPU seconds, the load average before it, and with
    phases_path the phase breakdown (benchmarks/phases.py)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers),
               "--backend", backend, "--seed", str(SEED), *extra]
    if report:
        command.append(f"--conformance-json={report}")
    if phases_path:
        command += ["-p", "benchmarks.phases", f"--phases-json={phases_path}"]
    load = os.getloadavg()[0]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    launch, started = time.time(), time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds, end = time.perf_counter() - started, time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode not in (0,):
        tail = "\n".join(finished.stdout.splitlines()[-15:])
        raise SystemExit(f"benchmark run failed (exit {finished.returncode}): {' '.join(command)}\n{tail}")
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    result = {"seconds": round(seconds, 2), "cpu": round(cpu, 2), "load": round(load, 2)}
    if phases_path:
        result["phases"] = phases(launch, end, *read_timelines(phases_path))
        result["timeline"] = read_timelines(phases_path)[0]
    return result


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--thorough", action="store_true", help="also time one -n 2 run of the thorough profile")
    parser.add_argument("--keyword", default=None, help="pass -k KEYWORD to every run (to try this script quickly)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--markdown", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--readme-from", type=Path, default=None, metavar="RESULTS_JSON",
                        help="only rewrite README.md's run-costs table from an earlier results file")
    args = parser.parse_args(argv)
    if args.readme_from:
        return _readme(json.loads(args.readme_from.read_text()), args.readme_from)
    from nnconform.spec import load_specs
    specs = load_specs()
    select = ["-k", args.keyword] if args.keyword else []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timings = {"n0": [], "n2": []}
        reports, timelines = {}, {}
        for repeat in range(args.repeats):
            for workers in (0, 2):
                # -n 2 runs without the JSON report: with it, the controller loads the backend
                # (a torch import) before it starts the workers, which `pytest -n 2` does not.
                key, path = f"n{workers}", tmp / f"torch-n{workers}-{repeat}.json" if workers == 0 else None
                run = run_suite("torch", workers, path, select, phases_path=tmp / f"phases-{key}.json" if repeat == 0 else None)
                timelines.setdefault(key, run.pop("timeline", None))
                timings[key].append(run)
                print(f"torch -n {workers} run {repeat + 1}: {run['seconds']} s (CPU {run['cpu']} s, "
                      f"load {run['load']})", flush=True)
                if path:
                    reports.setdefault(key, json.loads(path.read_text()))
        thorough = None
        if args.thorough:
            path = tmp / "thorough.json"
            thorough = run_suite("torch", 2, path, ["--conformance-profile", "thorough", *select])
            report = json.loads(path.read_text())
            thorough.update(examples=sum(i.get("examples") or 0 for i in report["items"]),
                            in_examples=round(sum(i.get("seconds") or 0 for i in report["items"]), 2))
            print(f"thorough -n 2: {thorough['seconds']} s", flush=True)
        reference_path = tmp / "reference.json"
        run_suite("reference", 0, reference_path, select)
        reference = json.loads(reference_path.read_text())
        info = machine()
        cuda = None
        if info["cuda"]:
            cuda_path = tmp / "cuda.json"
            cuda = {"card": info["cuda"], "seconds": run_suite("torch-cuda", 0, cuda_path, select)["seconds"],
                    "statistical": statistical_rows(json.loads(cuda_path.read_text()), specs)}
    n0, n2 = (pystats.median(r["seconds"] for r in timings[key]) for key in ("n0", "n2"))
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": info,
        "repeats": args.repeats, "seed": SEED,
        "full_run": {"n0": [{k: v for k, v in r.items() if k != "phases"} for r in timings["n0"]],
                     "n2": [{k: v for k, v in r.items() if k != "phases"} for r in timings["n2"]],
                     "median_n0": n0, "median_n2": n2, "ratio": round(n0 / n2, 3),
                     "phases_n0": timings["n0"][0]["phases"], "phases_n2": timings["n2"][0]["phases"]},
        "per_check": per_check_kind(reports["n0"], timelines["n0"]),
        "imports": import_costs(sys.executable, ROOT),
        "thorough": thorough,
        "slowest": slowest(reports["n0"]),
        "statistical": statistical_rows(reports["n0"], specs),
        "throughput": {"reference": throughput(reference), "torch": throughput(reports["n0"])},
        "cuda": cuda,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = results["date"].replace(":", "").replace("+0000", "Z")
    (args.out / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    args.markdown.write_text(text + kept_sections(args.markdown))
    print(text)
    return _readme(results, args.out / f"{stamp}.json")


def _readme(results: dict, source: Path) -> int:
    """README.md's "What a run costs" table, regenerated from these results."""
    relative = source.resolve().relative_to(ROOT) if source.resolve().is_relative_to(ROOT) else source
    if not update_readme(ROOT / "README.md", results, str(relative)):
        print("README.md has no run-costs markers: its table was not updated", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
