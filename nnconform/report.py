"""The JSON and Markdown conformance reports (--conformance-json, --conformance-md).

Both are built in the controlling process from what ConformanceSummary collected
out of pytest's own reports, so the reports of xdist workers merge into one file
and a crashed worker's item is still listed. The files are replaced atomically
(temporary file, then os.replace) when each item starts and when the session
ends, so a run killed by a hard crash leaves a consistent partial report on disk
whose ``run.complete`` is false and which names the item that was running. The
schema is documented in docs/reports.md and docs/report.schema.json.
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from nnconform.markdown import render_markdown
from nnconform.summary import CHECKED, FAILING, STATUSES, ConformanceSummary

SCHEMA_VERSION = 2
# Worst first: a clause's status is the worst status of its items.
SEVERITY = ("crashed", "timed-out", "failed", "no-longer-deviates", "now-passing", "running", "not-run",
            "known-deviation", "xfailed", "passed", "skipped", "unsupported")
# pytest exit codes of a run that went through: all passed, some failed, none collected.
FINISHED_EXIT_CODES = (0, 1, 5)
_PACKAGES = ("numpy", "scipy", "hypothesis", "pytest", "pytest-xdist", "pytest-timeout", "ml_dtypes", "packaging")


def _file_mode() -> int:
    """The mode a plainly created file gets (mkstemp would make it private)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


class ReportPathError(ValueError):
    """A report path cannot be written."""


def ensure_writable(path: str | os.PathLike, option: str) -> Path:
    """Resolve a report path and prove it can be written the way reports are written
    (a temporary file in the same directory), creating missing parent directories."""
    target = Path(path).absolute()
    if target.is_dir():
        raise ReportPathError(f"{option} {str(path)!r} is a directory; expected a file path")
    existing = next(parent for parent in target.parents if parent.exists())
    if not existing.is_dir():
        raise ReportPathError(f"{option} {str(path)!r} is not writable: {str(existing)!r} is not a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"):
            pass
    except OSError as error:
        raise ReportPathError(f"{option} {str(path)!r} is not writable: {error.strerror or error}") from None
    return target


def write_atomic(path: Path, text: str) -> None:
    """Write a temporary file beside ``path``, then rename it over ``path``: a reader
    (or a crash) sees the old report or the new one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def platform_info() -> dict:
    packages = {}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "system": platform.system(), "machine": platform.machine(), "platform": platform.platform(),
            "packages": packages}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_document(summary: ConformanceSummary, items_by_id: dict, meta: dict, *, complete: bool,
                   exit_status: int | None, started: float, started_at: str) -> dict:
    """The JSON report. ``meta`` holds the suite, backend, platform and run settings;
    ``items_by_id`` maps item ids to nnconform.items.Item, in spec order."""
    statuses = summary.statuses()
    items = [_item_entry(item, statuses[key], summary.outcomes.get(key))
             for key, item in items_by_id.items() if key in statuses]
    by_layer: dict[str, list[str]] = {}
    for entry in items:
        dtypes = by_layer.setdefault(entry["layer"], [])
        if entry["dtype"] not in dtypes:
            dtypes.append(entry["dtype"])
    totals = {status: 0 for status in STATUSES}
    for entry in items:
        totals[entry["status"]] += 1
    run = dict(meta["run"], started=started_at, finished=_now() if exit_status is not None else None,
               seconds=round(time.monotonic() - started, 3), complete=complete, exit_status=exit_status)
    checked = sum(totals[status] for status in CHECKED)
    nothing_checked = summary.nothing_checked()
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": meta["suite"],
        "backend": meta["backend"],
        "device": meta["backend"].get("device"),
        "platform": meta["platform"],
        "run": run,
        "dtypes": {"declared_by_backend": meta["backend"].get("dtypes", []), "by_layer": by_layer},
        "totals": totals,
        "passed": complete and exit_status == 0,
        "verdict": _verdict(complete, exit_status, nothing_checked, any(totals[s] for s in FAILING)),
        "checked": checked,
        "nothing_checked": nothing_checked,
        "items": items,
        "clauses": _clauses(items),
    }


def _item_entry(item, status: str, outcome) -> dict:
    record = outcome.record if outcome else {}
    clause = item.clause
    return {
        "id": item.id,
        "clause": clause.id,
        "statement": clause.statement,
        "family": clause.family,
        "check": clause.check,
        "statistical": clause.statistical,
        "layer": item.layer,
        "dtype": item.dtype,
        "status": status,
        "examples": record.get("examples"),
        "seconds": record.get("seconds"),
        "duration": round(outcome.duration, 4) if outcome else None,
        "message": (outcome.message or None) if outcome else None,
        "reproduce": (outcome.reproduce or None) if outcome else None,
        "reason": (outcome.reason or None) if outcome else None,
        "statistics": [_finite(evidence) for evidence in record.get("statistics", [])],
        "limited": str(record["limited"]) if record.get("limited") else None,
        "looseness": _looseness(record.get("looseness")),
        "conventions": {str(k): str(v) for k, v in record["conventions"].items()} if record.get("conventions") else None,
        "backend_notes": dict(record["backend_notes"]) if record.get("backend_notes") else None,
    }


def _looseness(value) -> float | None:
    """The largest observed error over the allowed one in a reference comparison of the
    item (1 is the bound itself); None when the item made no finite comparison."""
    return round(float(value), 6) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _verdict(complete: bool, exit_status: int | None, nothing_checked: bool, failing: bool) -> str:
    if failing:
        return "failed"
    if not complete:
        return "did-not-finish"
    if nothing_checked and exit_status in (0, 1):
        return "nothing-checked"
    return "passed" if exit_status == 0 else "failed"


def _clauses(items: list[dict]) -> list[dict]:
    clauses: dict[str, dict] = {}
    for entry in items:
        clause = clauses.setdefault(entry["clause"], {
            "id": entry["clause"], "statement": entry["statement"], "family": entry["family"],
            "check": entry["check"], "statistical": entry["statistical"], "status": entry["status"], "items": {}})
        clause["items"][f"{entry['layer']}:{entry['dtype']}"] = entry["status"]
        clause["status"] = min(clause["status"], entry["status"], key=SEVERITY.index)
    return list(clauses.values())


class ReportWriter:
    """Writes the reports: a partial report whenever an item starts, the final one at
    the end of the session (also after Ctrl-C or a crashed xdist worker).

    Without xdist a hard crash kills the process that writes, so the partial report
    is rewritten at every item start: it then names the item the crash interrupted.
    Under xdist a worker's crash is reported by the controller, and the partial
    report only guards against the controller itself being killed: it is rewritten
    at most once every ``interval`` seconds (each rewrite of a report of several
    hundred items costs tens of milliseconds)."""

    def __init__(self, summary: ConformanceSummary, items_by_id: dict, describe, json_path: Path | None,
                 md_path: Path | None, interval: float = 0.0):
        self.summary, self.items_by_id, self.describe = summary, items_by_id, describe
        self.json_path, self.md_path, self.interval = json_path, md_path, interval
        self.started, self.started_at = time.monotonic(), _now()
        self.meta: dict | None = None
        self._last_partial = float("-inf")
        summary.listeners.append(self.write_partial)

    def write_partial(self) -> None:
        """Best effort: a failed partial write (a full disk) must not stop the run; the
        final write reports its own error."""
        now = time.monotonic()
        if now - self._last_partial < self.interval:
            return
        self._last_partial = now
        try:
            self._write(complete=False, exit_status=None)
        except OSError:
            pass

    def pytest_sessionfinish(self, session, exitstatus):
        exitstatus = int(session.exitstatus)  # as the summary may have set it: nothing checked is not a pass
        unfinished = {"running", "not-run"} & set(self.summary.statuses().values())
        self._write(complete=exitstatus in FINISHED_EXIT_CODES and not unfinished, exit_status=exitstatus)

    def _write(self, *, complete: bool, exit_status: int | None) -> None:
        if self.meta is None:
            self.meta = self.describe()
        document = build_document(self.summary, self.items_by_id, self.meta, complete=complete,
                                  exit_status=exit_status, started=self.started, started_at=self.started_at)
        if self.json_path:
            indent = 1 if exit_status is not None else None  # partial reports: compact, as they are rewritten often
            write_atomic(self.json_path, json.dumps(document, indent=indent, allow_nan=False, default=str) + "\n")
        if self.md_path:
            write_atomic(self.md_path, render_markdown(document))


def _finite(value):
    """JSON has no NaN or infinity: such statistics are written as the strings
    "nan", "inf" and "-inf"."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
