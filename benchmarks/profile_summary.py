"""Summarize a py-spy profile of a conformance run by area and by function.

    py-spy record -r 200 -f raw -o profile.txt [--subprocesses] -- python -m pytest -n 0 -q
    python benchmarks/profile_summary.py profile.txt [--top 25]

py-spy's raw format is one collapsed stack per line ("frame;frame;... count", root
first, each frame "function (file:line)"). Each sample is put in the first area whose
marker occurs in its stack, scanning the areas in the order listed in AREAS, so an
area reads as "time inside this and not inside an earlier area". Function figures
are inclusive: the share of samples whose stack contains the function at least once.
Samples of threads other than the main one (pytest-timeout's backstop timers, which
py-spy sees waiting on a condition) are counted apart and left out of the shares.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (area, markers): a sample belongs to the first area one of whose markers is a
# substring of some frame of its stack. Order matters: specific before general.
AREAS = [
    ("backend seed (torch.manual_seed)", ["TorchBackend.seed", "TorchCudaBackend.seed"]),
    ("backend build (torch.nn module construction)", ["TorchBackend.build"]),
    ("backend forward/backward/state (torch)", ["TorchLayer."]),
    ("reference oracle (nnconform.reference)", ["nnconform/reference/", "/reference/"]),
    ("statistics (nnconform.statistics, scipy)", ["nnconform/statistics.py"]),
    ("drawing (draw_case, hypothesis strategies)", ["draw_case (", "Case.batch", "Case.warmup_batch"]),
    ("checks (nnconform.checks, other)", ["nnconform/checks/"]),
    ("hypothesis engine (outside the example body)", ["hypothesis/"]),
    ("test execution, other (pytest per-item hooks)", ["pytest_runtestloop", "pytest_runtest_protocol"]),
    ("collection", ["pytest_collection", "pytest_generate_tests"]),
    ("reporting (summary, reports)", ["pytest_sessionfinish", "pytest_terminal_summary", "nnconform/report",
                                       "nnconform/summary"]),
    ("imports (torch, scipy, hypothesis, ...)", ["_find_and_load"]),
    ("configure (specs, plugins)", ["pytest_configure", "pytest_cmdline_main", "_preparse"]),
]
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def read(path: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((stack.split(";"), int(count)))
    return samples


def function_of(frame: str) -> str:
    """'function (file)' without the line number, so a function counts once."""
    match = FRAME.match(frame)
    return f"{match['function']} ({match['file']})" if match else frame


def summarize(samples, top: int = 25) -> dict:
    threads = sum(count for stack, count in samples if stack[0].startswith("Thread._bootstrap"))
    samples = [(stack, count) for stack, count in samples if not stack[0].startswith("Thread._bootstrap")]
    total = sum(count for _, count in samples) or 1
    areas, inclusive, leaf = Counter(), Counter(), Counter()
    for stack, count in samples:
        for area, markers in AREAS:
            if any(marker in frame for frame in stack for marker in markers):
                areas[area] += count
                break
        else:
            areas["other (interpreter start, unattributed)"] += count
        for function in {function_of(frame) for frame in stack}:
            inclusive[function] += count
        leaf[function_of(stack[-1])] += count
    share = lambda counter: [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]
    return {"samples": total, "other_threads": threads, "areas": share(areas), "inclusive": share(inclusive), "self": share(leaf)}


def markdown(summary: dict) -> str:
    lines = [f"{summary['samples']} samples of the main thread ({summary['other_threads']} of other threads "
             "left out).", "", "| area | % of samples |", "|---|---|",
             *[f"| {name} | {pct} |" for name, pct in summary["areas"]], "",
             "| function (inclusive) | % |", "|---|---|",
             *[f"| `{name}` | {pct} |" for name, pct in summary["inclusive"]], "",
             "| function (self) | % |", "|---|---|",
             *[f"| `{name}` | {pct} |" for name, pct in summary["self"]], ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(markdown(summarize(read(args.profile), args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
