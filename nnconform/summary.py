"""Collect one status per conformance item from pytest's own reports (including
those xdist workers send back) and print the conformance summary at the end."""

from __future__ import annotations

from collections import Counter

STATUSES = ("passed", "failed", "crashed", "xfailed", "now-passing", "skipped", "unsupported")
UNSUPPORTED_PREFIX = "not supported by backend"


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
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "unsupported" if UNSUPPORTED_PREFIX in reason else "skipped"
    if report.failed:
        if "worker" in str(getattr(report, "longrepr", "")).lower() and "crashed" in str(report.longrepr).lower():
            return "crashed"
        return "failed"
    if report.when == "call":
        return "now-passing" if hasattr(report, "wasxfail") else "passed"
    return None


def item_id(nodeid: str) -> str:
    """The parameter id (clause-id:layer:dtype) inside a pytest node id."""
    return nodeid[nodeid.index("[") + 1: -1] if nodeid.endswith("]") and "[" in nodeid else nodeid


class ConformanceSummary:
    """Registered in the controlling process only."""

    def __init__(self, config):
        self.config = config
        self.status: dict[str, str] = {}
        self.records: dict[str, dict] = {}
        self.messages: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        if "test_conformance" not in report.nodeid:
            return
        status = status_of(report)
        key = item_id(report.nodeid)
        record = record_of(report)
        if record is not None:
            self.records[key] = record
        if status is None or (self.status.get(key) in ("failed", "crashed") and status != "crashed"):
            return
        self.status[key] = status
        if status in ("failed", "crashed"):
            self.messages[key] = _one_line(report)

    def counts(self) -> Counter:
        return Counter(self.status.values())

    def pytest_terminal_summary(self, terminalreporter):
        if not self.status:
            return
        counts = self.counts()
        write = terminalreporter.write_line
        terminalreporter.section("nnconform conformance summary")
        write(", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]))
        if counts["unsupported"]:
            write(f"note: {counts['unsupported']} items are not supported by the backend and were NOT checked")
        failing = sorted(k for k, s in self.status.items() if s in ("failed", "crashed"))
        for key in failing:
            write(f"  {self.status[key].upper()} {key}: {self.messages.get(key, '')}")
        for key in sorted(k for k, s in self.status.items() if s == "now-passing"):
            write(f"  NOW PASSING {key}: remove it from the xfails file")


def _one_line(report) -> str:
    text = getattr(report, "longreprtext", "") or str(report.longrepr)
    for line in text.splitlines():
        if line.startswith("["):
            return line[:300]
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("E ") and "[" in stripped:
            return stripped[1:].strip()[:300]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:300]
