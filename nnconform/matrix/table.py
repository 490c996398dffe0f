"""The conformance matrix as data: one column per backend, one row per clause, one
cell per (clause, backend) aggregating the clause's items (layers x dtypes) into
counts by category. Built from conformance reports and matrix run records alone
(nnconform.matrix.run), so that a matrix renders the same without running anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from nnconform.matrix.run import RECORD_KIND

# The categories of a cell, worst first: (key, symbol, legend text).
CATEGORIES = (
    ("crashed", "💥", "crashed: the process running the item died"),
    ("timed-out", "⌛", "timed out"),
    ("failed", "❌", "deviates: fails the clause"),
    ("xfailed", "🟡", "deviates, as the run's xfails file expects"),
    ("known", "📌", "deviates: a known deviation of the framework, with its entry in docs/findings.md"),
    ("not-run", "⬜", "not run (skipped, unavailable, or the run ended first)"),
    ("convention", "☑️", "conforms under a declared convention, named in the cell"),
    ("conforms", "✅", "conforms"),
    ("unsupported", "🚫", "unsupported: outside the backend's declared capabilities, not checked"),
)
SYMBOL = {key: symbol for key, symbol, _ in CATEGORIES}
ORDER = [key for key, _, _ in CATEGORIES]
STATUS_CATEGORY = {
    "passed": "conforms", "now-passing": "conforms", "no-longer-deviates": "conforms", "failed": "failed",
    "crashed": "crashed", "timed-out": "timed-out", "xfailed": "xfailed", "known-deviation": "known",
    "skipped": "not-run", "not-run": "not-run", "running": "not-run", "unsupported": "unsupported",
}
# The per-backend summary: what each count adds up.
SUMMARY = (("passed", ("conforms", "convention")), ("known", ("known", "xfailed")),
           ("unsupported", ("unsupported",)), ("failed", ("failed", "crashed", "timed-out")), ("not run", ("not-run",)))
# Column states, with the symbol of the summary cell.
STATES = {"finished": "", "did-not-finish": "⚠️", "crashed": "💥", "timed-out": "⌛", "interrupted": "⚠️",
          "cannot-load": "🚫", "unavailable": "🚫", "pending": "⏳"}
_ANCHOR = re.compile(r"findings\.md#([\w-]+)")


class MatrixError(ValueError):
    """A file given to the matrix is not a conformance report nor a run record."""


def category(item: dict) -> str:
    key = STATUS_CATEGORY.get(item["status"], "not-run")
    return "convention" if key == "conforms" and item.get("conventions") else key


def conventions_text(conventions: dict | None) -> str:
    return ", ".join(f"{name}={value}" for name, value in sorted((conventions or {}).items()))


def findings_anchor(item: dict) -> str | None:
    found = _ANCHOR.search(item.get("reason") or "")
    return found.group(1) if found else None


@dataclass
class Column:
    spec: str
    state: str
    message: str = ""
    name: str | None = None
    version: str | None = None
    device: str | None = None
    report: dict | None = None
    record: dict | None = None
    source: str | None = None

    @property
    def title(self) -> str:
        return self.spec if self.name in (None, self.spec) else f"{self.spec} ({self.name})"

    @property
    def items(self) -> list[dict]:
        return self.report["items"] if self.report else []

    @property
    def seconds(self) -> float | None:
        """The suite run's own time (its report's), None without a report."""
        return self.report["run"].get("seconds") if self.report else None

    def counts(self) -> dict[str, int]:
        found = {key: 0 for key in ORDER}
        for item in self.items:
            found[category(item)] += 1
        return found

    def summary(self) -> dict[str, int]:
        found = self.counts()
        return {label: sum(found[key] for key in keys) for label, keys in SUMMARY}


@dataclass
class Cell:
    items: list[dict] = field(default_factory=list)

    def counts(self) -> list[tuple[str, int]]:
        """(category, count) pairs present, worst first."""
        found: dict[str, int] = {}
        for item in self.items:
            found[category(item)] = found.get(category(item), 0) + 1
        return [(key, found[key]) for key in ORDER if key in found]

    @property
    def category(self) -> str:
        counts = self.counts()
        return counts[0][0] if counts else "not-run"

    def conventions(self) -> list[str]:
        return sorted({conventions_text(item["conventions"]) for item in self.items if category(item) == "convention"})

    def anchors(self) -> list[str]:
        return sorted({anchor for item in self.items if category(item) == "known"
                       for anchor in [findings_anchor(item)] if anchor})


@dataclass
class Row:
    clause: str
    family: str
    statement: str
    statistical: bool
    cells: list[Cell]


@dataclass
class Matrix:
    columns: list[Column]
    rows: list[Row]


def build(columns: list[Column]) -> Matrix:
    """Rows are the clauses of every report, in the order the reports list them."""
    clauses: dict[str, dict] = {}
    for column in columns:
        for clause in (column.report or {}).get("clauses", []):
            clauses.setdefault(clause["id"], clause)
    rows = []
    for clause_id, clause in clauses.items():
        cells = [Cell([item for item in column.items if item["clause"] == clause_id]) for column in columns]
        rows.append(Row(clause_id, clause["family"], clause["statement"], clause["statistical"], cells))
    return Matrix(columns, rows)


def load_columns(paths: list[str | Path]) -> list[Column]:
    """Columns from conformance reports and run records, in the order given. A report
    that a given run record names is read through the record (once)."""
    documents = [(Path(path), _read(Path(path))) for path in paths]
    through_records = {(path.parent / document["report"]).resolve() for path, document in documents
                       if document.get("kind") == RECORD_KIND and document.get("report")}
    columns = []
    for path, document in documents:
        if document.get("kind") == RECORD_KIND:
            columns.append(column_from_record(document, path))
        elif path.resolve() not in through_records:
            columns.append(column_from_report(document, str(path)))
    return columns


def column_from_record(record: dict, path: Path | None = None) -> Column:
    report = None
    if record.get("report") and path is not None:
        report_path = path.parent / record["report"]
        try:
            report = _read(report_path)
        except MatrixError:
            report = None  # a run killed while its report was being replaced: the record still tells
    probe = record.get("probe") or {}
    column = Column(record["backend"], record["state"], record.get("message", ""), name=probe.get("name"),
                    version=probe.get("version"), device=probe.get("device"), report=report, record=record,
                    source=str(path) if path else None)
    if report:
        _describe_from_report(column, report)
    return column


def column_from_report(report: dict, source: str | None = None) -> Column:
    backend, run = report["backend"], report["run"]
    if backend.get("unavailable"):
        state, message = "unavailable", f"unavailable: {backend['unavailable']}"
    elif not run.get("complete"):
        state, message = "did-not-finish", ("the run did not finish (" + (
            "the process ended before the session finished" if run.get("exit_status") is None
            else f"exit status {run['exit_status']}") + "); its report holds what had finished")
    else:
        state, message = "finished", f"finished: exit status {run['exit_status']} ({report['verdict']})"
    column = Column(backend["spec"], state, message, report=report, source=source)
    _describe_from_report(column, report)
    return column


def _describe_from_report(column: Column, report: dict) -> None:
    backend = report["backend"]
    column.name, column.version, column.device = backend["name"], backend.get("version"), backend.get("device")


def pending_column(spec: str) -> Column:
    return Column(spec, "pending", "not run yet: the matrix run has not reached it")


def _read(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MatrixError(f"cannot read {str(path)!r}: {error.strerror or error}") from None
    except ValueError as error:
        raise MatrixError(f"{str(path)!r} is not JSON: {error}") from None
    if not isinstance(document, dict) or not (document.get("kind") == RECORD_KIND
                                              or {"schema_version", "backend", "run", "items"} <= set(document)):
        raise MatrixError(f"{str(path)!r} is neither a conformance report (--conformance-json) "
                          "nor a matrix run record (*.run.json)")
    return document
