"""Run the full default conformance suite K times with different seeds and report failures.

    python scripts/repeat_runs.py -k 30 --json repeat-runs.json

Run i uses ``--seed FIRST+i`` (1..K by default), the default profile and backend
(torch on the CPU) and ``-n 2`` workers. A correct backend fails a statistical check
in one run with probability at most the suite's budget (1e-4), so K runs of torch
should give 0 failures; any failure is a false alarm to investigate (a tolerance or
a statistic that is wrong), unless the backend itself is at fault.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(seed: int, backend: str, workers: int, extra: list[str], timeout: float) -> dict:
    """One full run; its outcome counts and the ids and messages of failed items."""
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:cacheprovider",
                   "--backend", backend, "--seed", str(seed), "-n", str(workers), f"--junitxml={junit}", *extra]
        started = time.perf_counter()
        try:
            process = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
            exit_code, output = process.returncode, process.stdout + process.stderr
        except subprocess.TimeoutExpired as error:
            exit_code, output = None, f"timed out after {timeout:g} s\n{error.stdout or ''}"
        seconds = time.perf_counter() - started
        result = {"seed": seed, "exit_code": exit_code, "seconds": round(seconds, 1),
                  "command": " ".join(command[1:]).replace(f" --junitxml={junit}", "")}
        result.update(_parse_junit(junit) if junit.exists() else
                      {"tests": 0, "passed": 0, "skipped": 0, "failures": [], "note": output[-2000:]})
    if exit_code not in (0, 1) or (exit_code == 1 and not result["failures"]):
        result["failures"].append({"id": "<run>", "message": f"pytest exit code {exit_code}:\n{output[-2000:]}"})
    return result


def _parse_junit(path: Path) -> dict:
    root = ElementTree.parse(path).getroot()
    tests = passed = skipped = 0
    failures = []
    for case in root.iter("testcase"):
        tests += 1
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            name = case.get("name", "")
            failures.append({"id": name[name.find("[") + 1:-1] if "[" in name else name,
                             "kind": problem.tag, "message": (problem.get("message") or "")[:2000]})
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return {"tests": tests, "passed": passed, "skipped": skipped, "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", "--runs", type=int, default=30, help="number of runs K (default 30)")
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first run (default 1)")
    parser.add_argument("--backend", default="torch", help="backend to run (default torch, on the CPU)")
    parser.add_argument("-n", "--workers", type=int, default=2, help="xdist workers per run (default 2)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before one run is abandoned")
    parser.add_argument("--json", type=Path, default=None, help="write every run's result to this JSON file")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"-k expects a positive number of runs, got {args.runs}")

    runs = []
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.runs):
        result = run_once(seed, args.backend, args.workers, args.pytest_args, args.timeout)
        runs.append(result)
        status = "ok" if not result["failures"] else f"{len(result['failures'])} FAILED"
        print(f"run {len(runs)}/{args.runs} seed {seed}: {result['passed']} passed, {result['skipped']} skipped, "
              f"{status} ({result['seconds']} s)", flush=True)
        for failure in result["failures"]:
            first_line = failure["message"].strip().splitlines()[0] if failure["message"].strip() else ""
            print(f"    {failure['id']}: {first_line[:300]}", flush=True)
        if args.json:
            _write(args.json, args, runs, time.perf_counter() - started)
    total = sum(len(r["failures"]) for r in runs)
    failed_runs = sum(1 for r in runs if r["failures"])
    print(f"total: {total} failure(s) in {failed_runs} of {len(runs)} runs "
          f"({sum(r['tests'] for r in runs)} items, {time.perf_counter() - started:.0f} s)")
    return 1 if total else 0


def _write(path: Path, args, runs: list[dict], seconds: float) -> None:
    path.write_text(json.dumps({
        "backend": args.backend, "runs_requested": args.runs, "runs_done": len(runs), "workers": args.workers,
        "seeds": [r["seed"] for r in runs], "total_failures": sum(len(r["failures"]) for r in runs),
        "failed_runs": sum(1 for r in runs if r["failures"]), "seconds": round(seconds, 1), "runs": runs,
    }, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
