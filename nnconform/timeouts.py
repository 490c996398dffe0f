"""Per-item time limits (--clause-timeout) for the conformance items, and what the
run does after a hang (see nnconform.hangs): the hung layer's other items fail at
once, the rest run under the probe limit, and once two layers have hung no
further item runs.

pytest-timeout puts the timer around the test call (func_only); this plugin
implements its ``pytest_timeout_set_timer`` hook for conformance items on the main
thread: a SIGALRM alarm raises ClauseTimeout in the item, with a message that says
whether the backend hung or was slow. A backstop thread ends the process
(pytest-timeout's thread method) if the hang is in native code the alarm cannot
interrupt, after recording the hang so that the worker xdist starts next skips
that layer. Elsewhere pytest-timeout decides.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
import pytest_timeout

from nnconform.hangs import (BACKEND_CALLS, HUNG_LAYERS_STOP, PROBE_FLOOR_S, PROBE_FRACTION, ClauseTimeout,
                             HangRegistry, NotRunAfterHang, diagnose, probe_limit)

# After the limit, a hang the alarm cannot interrupt (native code that never returns
# to Python) ends the process this many seconds later; see docs/reports.md.
TIMEOUT_GRACE = 10.0
TIMED_OUT_ATTRIBUTE = "nnconform_timed_out"


class TimeLimits:
    """Registered in every process that runs conformance items."""

    def __init__(self, registry: HangRegistry, item_of, reproduce):
        self.registry, self.item_of, self.reproduce = registry, item_of, reproduce

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item):
        """An item of a layer that hung earlier in the run is not waited on, nor is any
        item once HUNG_LAYERS_STOP layers have hung."""
        conformance = self.item_of(item)
        if conformance is None:
            return
        alone = f"check this one alone with: {self.reproduce(conformance)}"
        hang = self.registry.hung(conformance.layer)
        if hang:
            raise NotRunAfterHang(
                f"[{conformance.clause.id}] not run: the backend hung on layer {conformance.layer} earlier in this "
                f"run ({hang['item']}: its {hang['call']} call did not return within {hang['limit']:g} s), so the "
                f"layer's other items are not waited on; {alone}")
        hangs = self.registry.all()
        if len(hangs) >= HUNG_LAYERS_STOP:
            where = "; ".join(f"{entry['layer']} in {entry['item']}" for entry in hangs)
            raise NotRunAfterHang(
                f"[{conformance.clause.id}] not run: the backend hung on {len(hangs)} layers earlier in this run "
                f"({where}), so no further item is waited on; leave those layers out with a skips file "
                f"(layer=NAME) to check the others, or {alone}")

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item, settings):
        conformance = self.item_of(item)
        if conformance is None or settings.method != "signal" or \
                threading.current_thread() is not threading.main_thread():
            return None
        limit, why = settings.timeout, "--clause-timeout"
        first = self.registry.first()
        if first is not None and probe_limit(limit) < limit:
            limit = probe_limit(limit)
            why = (f"the probe limit, max({PROBE_FRACTION:g} x --clause-timeout, {PROBE_FLOOR_S:g} s), in force "
                   f"since {first['item']} hung")
        BACKEND_CALLS.reset()
        started = time.perf_counter()

        def on_alarm(signum, frame):
            hung, diagnosis = diagnose(BACKEND_CALLS, time.perf_counter() - started)
            if hung:
                self.registry.record(conformance.layer, conformance.id, limit, BACKEND_CALLS.current)
            raise ClauseTimeout(f"[{conformance.clause.id}] timed out after {limit:g} s ({why}): {diagnosis}")

        def backstop():
            self.registry.record(conformance.layer, conformance.id, limit, BACKEND_CALLS.current)
            pytest_timeout.timeout_timer(item, settings)

        timer = threading.Timer(limit + TIMEOUT_GRACE, backstop)
        timer.daemon = True
        previous = signal.signal(signal.SIGALRM, on_alarm)

        def cancel():
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            timer.cancel()

        item.cancel_timeout = cancel
        signal.setitimer(signal.ITIMER_REAL, limit)
        timer.start()
        return True


def mark_timeout(report, call) -> None:
    """Tag the report of an item stopped by ClauseTimeout; an item not run after a
    hang gets its one-line message instead of a traceback through the hooks."""
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(ClauseTimeout):
        setattr(report, TIMED_OUT_ATTRIBUTE, True)
        if call.excinfo.errisinstance(NotRunAfterHang):
            report.longrepr = str(call.excinfo.value)
