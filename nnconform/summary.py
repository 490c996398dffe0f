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

from nnconform.known import PREFIX as KNOWN_PREFIX
from nnconform.known import STRICT_XPASS
from nnconform.timeouts import TIMED_OUT_ATTRIBUTE

# Every status an item can have, in the order the reports list them. "running" and
# "not-run" appear only in a report of a run that ended early: started without a
# result (the item a hard crash killed), and collected but never started.
STATUSES = ("passed", "failed", "crashed", "timed-out", "known-deviation", "xfailed", "now-passing",
            "no-longer-deviates", "skipped", "unsupported", "running", "not-run")
FAILING = ("failed", "crashed", "timed-out")
# An item with one of these statuses ran its check to a verdict: it was checked.
CHECKED = ("passed", "failed", "known-deviation", "xfailed", "now-passing", "no-longer-deviates")
UNSUPPORTED_PREFIX = "not supported by backend"
_EXCEPTION_NAME = re.compile(r"^[\w.]+: (?=\[)")
_REPRODUCE = re.compile(r"^E?\s*reproduce with: (.+?)\s*$", re.MULTILINE)
NOTHING_CHECKED_OPTION = "--allow-nothing-checked"


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
            return "known-deviation" if report.wasxfail.startswith(KNOWN_PREFIX) else "xfailed"
        return "unsupported" if UNSUPPORTED_PREFIX in skip_reason(report) else "skipped"
    if report.failed:
        text = str(getattr(report, "longrepr", ""))
        if getattr(report, TIMED_OUT_ATTRIBUTE, None):
            return "timed-out"
        if "worker" in text.lower() and "crashed" in text.lower():
            return "crashed"
        if text.startswith(STRICT_XPASS):
            return "no-longer-deviates" if text.removeprefix(STRICT_XPASS).startswith(KNOWN_PREFIX) else "now-passing"
        return "failed"
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "no-longer-deviates" if report.wasxfail.startswith(KNOWN_PREFIX) else "now-passing"
        return "passed"
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
        if status in FAILING or status in ("xfailed", "known-deviation"):
            outcome.message = one_line(report)
            outcome.reproduce = outcome.record.get("reproduce") or reproduce_command(report)
        if status == "failed":
            outcome.reason = next((text for name, text in report.sections if name == "nnconform"), "")
        if status in ("skipped", "unsupported"):
            outcome.reason = skip_reason(report)
        if status in ("xfailed", "now-passing", "known-deviation", "no-longer-deviates"):
            outcome.reason = getattr(report, "wasxfail", "") or str(report.longrepr).removeprefix(STRICT_XPASS)
        if status == "now-passing":
            outcome.message = f"now passing, remove it from the xfails file ({outcome.reason})"
        if status == "no-longer-deviates":
            outcome.message = (f"no longer deviates: the {outcome.reason} did not show in this run: either "
                               "this run's draws did not reach its trigger (another --seed may), or the framework "
                               "fixed it, and then its entry's version= should leave this version out (tell nnconform)")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        """Nothing checked is not a pass: a run that would exit 0 exits 1 (before the
        report writer reads the exit status), unless --allow-nothing-checked."""
        if self.nothing_checked() and session.exitstatus == 0 and not self._allow_nothing_checked():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if not self.outcomes:
            return
        counts = self.counts()
        write = terminalreporter.write_line
        terminalreporter.section("nnconform conformance summary")
        write(", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]))
        if counts["unsupported"]:
            write(f"note: {counts['unsupported']} items are not supported by the backend and were NOT checked")
        for reason, keys in self.grouped("limited").items():
            write(f"note: {count(len(keys), 'item')} ran with reduced power: {reason} ({_some(keys)})")
        for conventions, keys in self.grouped("conventions").items():
            write(f"note: {count(len(keys), 'item')} passed under the conventions {conventions} ({_some(keys)})")
        for key, outcome in sorted(self.outcomes.items()):
            if outcome.status in FAILING:
                write(f"  {outcome.status.upper()} {key}: {outcome.message}")
        for key, outcome in sorted(self.outcomes.items()):
            if outcome.status == "known-deviation":
                write(f"  KNOWN DEVIATION {key}: {outcome.reason.removeprefix(KNOWN_PREFIX + ' ')}")
            elif outcome.status == "now-passing":
                write(f"  NOW PASSING {key}: remove it from the xfails file ({outcome.reason})")
            elif outcome.status == "no-longer-deviates":
                write(f"  NO LONGER DEVIATES {key}: {outcome.message.removeprefix('no longer deviates: ')}")
        if self.nothing_checked():
            write(self.nothing_checked_line(), red=not self._allow_nothing_checked(), bold=True)

    # -- queries ---------------------------------------------------------------------
    def statuses(self) -> dict[str, str]:
        """Every item's status, with collected items that never started as not-run."""
        result = {key: "not-run" for key in self.collected}
        result.update((key, outcome.status) for key, outcome in self.outcomes.items())
        return result

    def counts(self) -> Counter:
        return Counter(self.statuses().values())

    def nothing_checked(self) -> bool:
        """Items ran (or were skipped), and not one of them ran its check to a verdict."""
        return bool(self.outcomes) and not any(status in CHECKED for status in self.statuses().values())

    def nothing_checked_line(self) -> str:
        counts = self.counts()
        found = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        reasons = Counter(outcome.reason or outcome.message for outcome in self.outcomes.values())
        reason, _ = reasons.most_common(1)[0]
        verdict = (f"accepted by {NOTHING_CHECKED_OPTION}" if self._allow_nothing_checked()
                   else f"the run fails; pass {NOTHING_CHECKED_OPTION} where that is expected")
        return (f"nnconform: NOTHING WAS CHECKED: not one of the {sum(counts.values())} conformance items ran "
                f"its check ({found}{'; ' + reason if reason else ''}): {verdict}")

    def grouped(self, key: str) -> dict[str, list[str]]:
        """Items by the text of one record entry ("limited": why an item ran with
        reduced power; "conventions": the conventions a passing item was judged under)."""
        groups: dict[str, list[str]] = {}
        for item, outcome in self.outcomes.items():
            value = outcome.record.get(key)
            if value and (key != "conventions" or outcome.status == "passed"):
                groups.setdefault(describe_value(value), []).append(item)
        return groups

    def _allow_nothing_checked(self) -> bool:
        return bool(self.config.getoption("allow_nothing_checked", False))

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


def describe_value(value) -> str:
    """A record entry as one line: a text as it is, conventions as name=value pairs."""
    if isinstance(value, dict):
        return ", ".join(f"{name}={value[name]}" for name in sorted(value))
    return str(value)


def count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _some(keys: list[str], shown: int = 3) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(sorted(keys)[:shown]) + more


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
