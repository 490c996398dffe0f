"""Collect one status per conformance item from pytest's own reports (including
those xdist workers send back) and print the conformance summary at the end.

Runs in the controlling process only. The JSON and Markdown reports
(nnconform.report) are built from what this collects.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pytest

# Every status an item can have, in the order the reports list them. "running" and
# "not-run" appear only in a report of a run that ended early: started without a
# result (the item a hard crash killed), and collected but never started.
STATUSES = ("passed", "failed", "crashed", "timed-out", "xfailed", "now-passing", "skipped", "unsupported",
            "running", "not-run")
FAILING = ("failed", "crashed", "timed-out")
UNSUPPORTED_PREFIX = "not supported by backend"
TIMED_OUT_ATTRIBUTE = "nnconform_timed_out"
STRICT_XPASS = "[XPASS(strict)] "  # pytest's failure text for an xfail that passed under strict=True
_EXCEPTION_NAME = re.compile(r"^[\w.]+: (?=\[)")
_REPRODUCE = re.compile(r"^E?\s*reproduce with: (.+?)\s*$", re.MULTILINE)


def record_of(report) -> dict | None:
    for name, value in getattr(report, "user_properties", ()):
        if name == "nnconform":
            return value
    return None


def status_of(report) -> str | None:
    """The item's conformance status from one phase's report, or None when the
    phase says nothing new (a passing setup or teardown)."""
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return "xfailed"
        return "unsupported" if UNSUPPORTED_PREFIX in skip_reason(report) else "skipped"
    if report.failed:
        text = str(getattr(report, "longrepr", ""))
        if getattr(report, TIMED_OUT_ATTRIBUTE, None):
            return "timed-out"
        if "worker" in text.lower() and "crashed" in text.lower():
            return "crashed"
        if text.startswith(STRICT_XPASS):
            return "now-passing"
        return "failed"
    if report.when == "call":
        return "now-passing" if hasattr(report, "wasxfail") else "passed"
    return None


def skip_reason(report) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def item_id(nodeid: str) -> str:
    """The parameter id (clause-id:layer:dtype) inside a pytest node id."""
    return nodeid[nodeid.index("[") + 1: -1] if nodeid.endswith("]") and "[" in nodeid else nodeid


def is_conformance(nodeid: str) -> bool:
    return "test_conformance[" in nodeid


@dataclass
class Outcome:
    """What the reports say about one item."""
    status: str = "running"
    record: dict = field(default_factory=dict)
    message: str = ""
    reason: str = ""
    reproduce: str = ""
    duration: float = 0.0


class ConformanceSummary:
    """Registered in the controlling process only."""

    def __init__(self, config):
        self.config = config
        self.outcomes: dict[str, Outcome] = {}
        self.collected: dict[str, None] = {}  # item ids in collection order
        self.listeners = []

    # -- pytest hooks ------------------------------------------------------------------
    def pytest_collection_finish(self, session):
        self._collected(item.nodeid for item in session.items)

    def pytest_runtest_logstart(self, nodeid, location):
        if is_conformance(nodeid):
            self.outcomes.setdefault(item_id(nodeid), Outcome())
            self._changed()

    def pytest_runtest_logreport(self, report):
        if not is_conformance(report.nodeid):
            return
        key = item_id(report.nodeid)
        outcome = self.outcomes.setdefault(key, Outcome())
        record = record_of(report)
        if record is not None:
            outcome.record = record
        outcome.duration += getattr(report, "duration", 0.0) or 0.0
        status = status_of(report)
        if status is None or (outcome.status in FAILING and status not in ("crashed", "timed-out")):
            return
        outcome.status = status
        if status in FAILING or status == "xfailed":
            outcome.message = one_line(report)
            outcome.reproduce = outcome.record.get("reproduce") or reproduce_command(report)
        if status in ("skipped", "unsupported"):
            outcome.reason = skip_reason(report)
        if status in ("xfailed", "now-passing"):
            outcome.reason = getattr(report, "wasxfail", "") or str(report.longrepr).removeprefix(STRICT_XPASS)
        if status == "now-passing":
            outcome.message = f"now passing, remove it from the xfails file ({outcome.reason})"

    def pytest_terminal_summary(self, terminalreporter):
        if not self.outcomes:
            return
        counts = self.counts()
        write = terminalreporter.write_line
        terminalreporter.section("nnconform conformance summary")
        write(", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]))
        if counts["unsupported"]:
            write(f"note: {counts['unsupported']} items are not supported by the backend and were NOT checked")
        for key, outcome in sorted(self.outcomes.items()):
            if outcome.status in FAILING:
                write(f"  {outcome.status.upper()} {key}: {outcome.message}")
        for key, outcome in sorted(self.outcomes.items()):
            if outcome.status == "now-passing":
                write(f"  NOW PASSING {key}: remove it from the xfails file ({outcome.reason})")

    # -- queries ---------------------------------------------------------------------
    def statuses(self) -> dict[str, str]:
        """Every item's status, with collected items that never started as not-run."""
        result = {key: "not-run" for key in self.collected}
        result.update((key, outcome.status) for key, outcome in self.outcomes.items())
        return result

    def counts(self) -> Counter:
        return Counter(self.statuses().values())

    def _collected(self, nodeids) -> None:
        added = False
        for nodeid in nodeids:
            key = item_id(nodeid)
            if is_conformance(nodeid) and key not in self.collected:
                self.collected[key] = None
                added = True
        if added:
            self._changed()

    def _changed(self) -> None:
        """Tell the report writer. Called when an item starts, so that a partial report
        on disk names the item a hard crash interrupts."""
        for listener in self.listeners:
            listener()


class XdistCollection:
    """Under xdist only the workers collect; each tells the controller its item ids."""

    def __init__(self, summary: ConformanceSummary):
        self.summary = summary

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.summary._collected(ids)


def one_line(report) -> str:
    """The clause's failure message (it starts with the clause id in brackets), else
    the first assertion line, else the last line."""
    text = getattr(report, "longreprtext", "") or str(report.longrepr)
    clause = f"[{item_id(report.nodeid).split(':', 1)[0]}]"
    for line in text.splitlines():
        if line.startswith(clause):
            return line[:300]
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("E ") and "[" in stripped:
            return _EXCEPTION_NAME.sub("", stripped[1:].strip())[:300]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:300]


def reproduce_command(report) -> str:
    text = getattr(report, "longreprtext", "") or str(report.longrepr)
    found = _REPRODUCE.findall(text)
    return found[-1] if found else ""
