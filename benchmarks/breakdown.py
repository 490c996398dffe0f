"""Where one conformance run spends its time: phases from benchmarks/phases.py's
timelines, and time per example by check kind from the JSON report.

All times are seconds from the launch of `python -m pytest` (run.py takes the
launch time just before it starts the process).
"""

from __future__ import annotations

import json
from pathlib import Path

TIMING_PARTS = ("draw", "backend", "check")


def read_timelines(path: Path) -> tuple[dict, list[dict]]:
    """The controller's timeline and the workers', from PATH and PATH.gwN."""
    controller = json.loads(path.read_text())
    workers = [json.loads(p.read_text()) for p in sorted(path.parent.glob(path.name + ".gw*"))]
    return controller, workers


def _span(events: dict, start: str, end: str) -> float | None:
    if events.get(start) is None or events.get(end) is None:
        return None
    return round(events[end] - events[start], 3)


def _items(controller: dict, worker: str | None = None) -> dict:
    """Summed per-item figures: pytest's setup+call+teardown, time in examples, and
    the timing split where the runner provides it."""
    entries = [e for e in controller.get("items", {}).values() if worker is None or e.get("worker") == worker]
    pytest_seconds = sum(e.get("setup", 0) + e.get("call", 0) + e.get("teardown", 0) for e in entries)
    records = [e["record"] for e in entries if e.get("record")]
    in_examples = sum(r.get("seconds") or 0 for r in records)
    split = None
    if records and all(r.get("timing") for r in records):
        split = {part: round(sum(r["timing"].get(part, 0) for r in records), 3) for part in TIMING_PARTS}
    return {"items": len(entries), "pytest_seconds": round(pytest_seconds, 3),
            "in_examples": round(in_examples, 3), "split": split}


def phases(launch: float, end: float, controller: dict, workers: list[dict]) -> list[tuple[str, float | None]]:
    """(phase, seconds) rows for one run; with workers, rows for each worker,
    labelled by its id. "at" rows are points in time, the others spans."""
    c = {name: (value - launch if value else None) for name, value in controller["events"].items()}
    rows = [("interpreter start, imports (pytest; conftest: nnconform.plugin, scipy, ml_dtypes, hypothesis)",
             _at(c["configure_start"])),
            ("configure (specs, expectations, plugins)", _span(c, "configure_start", "sessionstart")),
            ("session start (the controller loads the backend where it needs it: torch import"
             + ("; then it starts the workers)" if workers else ")"), _span(c, "sessionstart", "sessionstart_end"))]
    if not workers:
        rows += [("collection", _span(c, "collection_start", "collection_end")),
                 ("first test starts at", _at(c["first_test_start"]))]
        rows += _item_rows("items", _items(controller), _span(c, "first_test_start", "last_test_end"))
        rows.append(("session finish (summary, reports)", _span(c, "sessionfinish_start", "sessionfinish_end")))
    else:
        for worker in workers:
            w = {name: (value - launch if value else None) for name, value in worker["events"].items()}
            role = worker["role"]
            rows += [(f"{role}: process started at", _at(w["process_start"])),
                     (f"{role}: imports (pytest; conftest: nnconform.plugin)", _span(w, "process_start", "configure_start")),
                     (f"{role}: configure and session start", _span(w, "configure_start", "collection_start")),
                     (f"{role}: collection (backend load: torch import)", _span(w, "collection_start", "collection_end")),
                     (f"{role}: first test starts at", _at(w["first_test_start"]))]
            rows += _item_rows(f"{role}: items", _items(controller, role), _span(w, "first_test_start", "last_test_end"))
        last = max(w["events"]["last_test_end"] - launch for w in workers)
        rows.append(("controller: last worker's last test to session end (worker shutdown, summary, reports)",
                     round(c["sessionfinish_end"] - last, 3)))
    rows += [(f"{doc['role']}: CPU seconds up to its unconfigure", doc.get("cpu_seconds")) for doc in [controller, *workers]]
    rows.append(("interpreter exit", round(end - launch - c["unconfigure"], 3)))
    rows.append(("total (wall)", round(end - launch, 3)))
    return rows


def _at(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _item_rows(label: str, items: dict, span: float | None) -> list[tuple[str, float | None]]:
    rows = [(f"{label}: {items['items']} items, first start to last end", span),
            (f"{label}: pytest per-item hooks (duration minus examples)",
             round(items["pytest_seconds"] - items["in_examples"], 3)),
            (f"{label}: in Hypothesis examples", items["in_examples"])]
    if items["split"]:
        inside = sum(items["split"].values())
        rows += [(f"{label}: examples: {part}", seconds) for part, seconds in items["split"].items()]
        rows.append((f"{label}: examples: Hypothesis engine (rest)", round(items["in_examples"] - inside, 3)))
    return rows


def per_check_kind(report: dict, controller: dict | None = None) -> list[dict]:
    """Per check kind: items, examples, seconds in examples and ms per example; with
    the runner's timing split, ms per example in drawing, backend calls and checks."""
    by_id = {}
    for nodeid, entry in (controller or {}).get("items", {}).items():
        record = entry.get("record") or {}
        if record.get("timing") and "[" in nodeid:
            by_id[nodeid.rsplit("[", 1)[1].rstrip("]")] = record["timing"]
    rows = {}
    for item in report["items"]:
        if not item.get("examples"):
            continue
        row = rows.setdefault(item["check"], {"check": item["check"], "items": 0, "examples": 0, "seconds": 0.0,
                                              "split": {part: 0.0 for part in TIMING_PARTS}, "split_items": 0})
        row["items"] += 1
        row["examples"] += item["examples"]
        row["seconds"] += item.get("seconds") or 0.0
        if item["id"] in by_id:
            row["split_items"] += 1
            for part in TIMING_PARTS:
                row["split"][part] += by_id[item["id"]].get(part, 0.0)
    result = []
    for row in sorted(rows.values(), key=lambda r: -r["seconds"] / r["examples"]):
        entry = {"check": row["check"], "items": row["items"], "examples": row["examples"],
                 "seconds": round(row["seconds"], 3), "ms_per_example": round(1000 * row["seconds"] / row["examples"], 2)}
        if row["split_items"] == row["items"]:
            entry.update({f"{part}_ms": round(1000 * row["split"][part] / row["examples"], 2) for part in TIMING_PARTS})
        result.append(entry)
    return result


# Imports a conformance process makes, each timed in a fresh interpreter after the
# ones it needs anyway (numpy before all; torch before what only torch pulls in).
IMPORTS = [
    ("pytest, xdist", "import numpy", "import pytest, xdist"),
    ("hypothesis (strategies, extra.numpy)", "import numpy", "import hypothesis.strategies, hypothesis.extra.numpy"),
    ("ml_dtypes", "import numpy", "import ml_dtypes"),
    ("scipy.stats", "import numpy", "import scipy.stats"),
    ("scipy.special, optimize, fft (without stats)", "import numpy", "import scipy.special, scipy.optimize, scipy.fft"),
    ("nnconform.plugin (all of the above it needs)", "import numpy", "import nnconform.plugin"),
    ("torch", "import numpy", "import torch"),
    ("sympy via torch autograd (first backward with a gradient tensor)", "import torch",
     "import torch.fx.experimental.symbolic_shapes"),
]
_IMPORT_TIMER = """
import time
{before}
cpu, wall = time.process_time(), time.perf_counter()
{statement}
print(time.process_time() - cpu, time.perf_counter() - wall)
"""


def import_costs(python: str, cwd: Path, repeats: int = 3) -> list[dict]:
    """CPU and wall seconds of each import in IMPORTS, median of fresh interpreters."""
    import subprocess
    rows = []
    for name, before, statement in IMPORTS:
        cpu, wall = [], []
        for _ in range(repeats):
            out = subprocess.run([python, "-c", _IMPORT_TIMER.format(before=before, statement=statement)],
                                 cwd=cwd, capture_output=True, text=True, check=True).stdout.split()
            cpu.append(float(out[0]))
            wall.append(float(out[1]))
        rows.append({"import": name, "cpu": round(sorted(cpu)[repeats // 2], 3), "wall": round(sorted(wall)[repeats // 2], 3)})
    return rows
