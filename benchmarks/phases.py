"""A pytest plugin that records when each phase of a run begins and ends, in the
controller and in every xdist worker, for benchmarks/run.py.

    python -m pytest -p benchmarks.phases --phases-json=out.json ...

Each process writes its own timeline (epoch seconds, so the processes line up):
its start (from /proc, where there is one), configure, collection, its first and
last test, and session finish, and the CPU seconds it used up to its unconfigure. The controller adds, per item, pytest's setup, call
and teardown durations and the item's record (examples, seconds and, where the
runner provides it, the "timing" split into draw, backend and check seconds).
Observing only: it changes no outcome, and it imports nothing of the suite.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

LOADED = time.time()


def pytest_addoption(parser):
    parser.addoption("--phases-json", default=None, metavar="PATH",
                     help="benchmarks: write each process's phase timeline here (PATH.gwN for workers)")


def process_start() -> float | None:
    """When this process started, in epoch seconds (Linux: /proc, to 10 ms; else None)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_after_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - started_after_boot)
    except (OSError, ValueError, IndexError):
        return None


class Timeline:
    def __init__(self, config):
        worker = getattr(config, "workerinput", None)
        self.role = worker["workerid"] if worker else "controller"
        self.path = config.getoption("phases_json")
        self.events = {"process_start": process_start(), "plugin_loaded": LOADED}
        self.items: dict[str, dict] = {}

    def mark(self, name: str, first: bool = False) -> None:
        if not (first and name in self.events):
            self.events[name] = time.time()

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self, session):
        """Configure has ended. The suite's controller loads the backend here where it
        needs it, and under xdist the controller starts its workers."""
        self.mark("sessionstart")
        try:
            return (yield)
        finally:
            self.mark("sessionstart_end")

    @pytest.hookimpl(wrapper=True)
    def pytest_collection(self, session):
        self.mark("collection_start")
        try:
            return (yield)
        finally:
            self.mark("collection_end")

    def pytest_runtest_logstart(self, nodeid, location):
        self.mark("first_test_start", first=True)

    def pytest_runtest_logfinish(self, nodeid, location):
        self.mark("last_test_end")

    def pytest_runtest_logreport(self, report):
        """Controller (and -n 0): per item, pytest's phase durations and the record."""
        worker = getattr(getattr(report, "node", None), "workerinput", {}).get("workerid")
        entry = self.items.setdefault(report.nodeid, {"worker": worker})
        entry[report.when] = report.duration
        for name, value in report.user_properties:
            if name == "nnconform" and report.when == "call":
                entry["record"] = {key: value.get(key) for key in ("clause", "examples", "seconds", "timing")}

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session):
        self.mark("sessionfinish_start")
        try:
            return (yield)
        finally:
            self.mark("sessionfinish_end")

    @pytest.hookimpl(wrapper=True)
    def pytest_terminal_summary(self, terminalreporter):
        self.mark("terminal_summary_start")
        try:
            return (yield)
        finally:
            self.mark("terminal_summary_end")

    def pytest_unconfigure(self, config):
        self.mark("unconfigure")
        if not self.path:
            return
        path = Path(self.path if self.role == "controller" else f"{self.path}.{self.role}")
        document = {"role": self.role, "events": self.events, "cpu_seconds": round(time.process_time(), 3)}
        if self.role == "controller":
            document["items"] = self.items
        path.write_text(json.dumps(document) + "\n")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    timeline = Timeline(config)
    timeline.mark("configure_start")
    config.pluginmanager.register(timeline, "nnconform-phases")
