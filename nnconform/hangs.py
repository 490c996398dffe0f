"""Hangs: what the backend was doing when an item ran out of time, and what the run
remembers about hangs, so that a backend that hangs costs one time limit per layer,
not one per item.

CheckContext._call runs every backend call through BACKEND_CALLS, which counts the
calls of the current item and knows the one in progress. When an item's limit
expires, ``diagnose`` tells a hang (one call that has not returned) from a slow
backend (calls completing, too slowly for the limit). A hang is written to a
HangRegistry: a directory shared by the controller and every xdist worker. From
then on, the hung layer's other items are not run (they fail at once, naming the
item that hung), and every other item runs under a shorter probe limit
(``probe_limit``). Once HUNG_LAYERS_STOP layers have hung, the hang is the
backend's, not a layer's, and no further item is run. docs/reports.md#time-limits
gives the reasons for these numbers.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PROBE_FRACTION = 0.1  # after a hang, other items get this share of --clause-timeout...
PROBE_FLOOR_S = 5.0  # ...but never less than this (over 10 times the slowest item of a working backend)
HUNG_LAYERS_STOP = 2  # once this many layers hung, the backend hangs throughout: no further item is run
HUNG_SHARE = 0.5  # a hung call holds at least this share of the backend's time in the item


class ClauseTimeout(BaseException):
    """An item ran out of time. A BaseException, so Hypothesis stops at once instead
    of shrinking, which would replay the hang."""


class NotRunAfterHang(ClauseTimeout):
    """An item of a layer that hung earlier in the run, failed without running."""


def probe_limit(clause_timeout: float) -> float:
    return min(clause_timeout, max(clause_timeout * PROBE_FRACTION, PROBE_FLOOR_S))


@dataclass
class CallLog:
    """The backend calls of the current item: how many returned, their total time,
    and the call in progress."""
    completed: int = 0
    seconds: float = 0.0
    current: str | None = None
    current_started: float = 0.0

    def reset(self) -> None:
        self.completed, self.seconds, self.current = 0, 0.0, None

    def run(self, what: str, function, *args):
        started = time.perf_counter()
        self.current, self.current_started = _call_name(what), started
        try:
            return function(*args)
        finally:
            self.completed += 1
            self.seconds += time.perf_counter() - started
            self.current = None


BACKEND_CALLS = CallLog()


def _call_name(what: str) -> str:
    return what.split("(", 1)[0]


def diagnose(calls: CallLog, elapsed: float) -> tuple[bool, str]:
    """(hung, why) for an item stopped after ``elapsed`` seconds, read at the alarm.

    Hung: a call is in progress and it holds most of the backend's time in the item
    (and a tenth of the item's time, so that a call that has only just started is no
    hang). Slow: the backend's calls took most of the item's time. Otherwise the time
    went to the suite's own work (drawing inputs, the reference, the statistics)."""
    done = calls.completed
    mean = f", {calls.seconds / done:.3g} s each on average" if done else ""
    running = time.perf_counter() - calls.current_started if calls.current else 0.0
    backend = calls.seconds + running
    if calls.current and running >= max(HUNG_SHARE * backend, 0.1 * elapsed):
        return True, (f"the backend hung: its {calls.current} call had not returned after {running:.1f} s "
                      f"({done} earlier backend call{'' if done == 1 else 's'} in this item completed{mean})")
    now = f"; a {calls.current} call had run {running:.1f} s" if calls.current else ""
    if backend >= HUNG_SHARE * elapsed:
        return False, f"the backend is slow, not hung: {done} backend calls completed in this item{mean}{now}"
    return False, (f"the time went to the suite's own computation: the backend's {done} completed calls took "
                   f"{calls.seconds:.1f} s of the {elapsed:.1f} s{now}")


class HangRegistry:
    """The layers that hung in this run, one small JSON file each in a directory that
    the controller creates and every xdist worker shares (so a worker started after
    a crash knows them too)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    @classmethod
    def new(cls) -> "HangRegistry":
        """A registry for a new run; its directory is made at the first hang."""
        return cls(Path(tempfile.gettempdir()) / f"nnconform-hangs-{os.getpid()}-{uuid.uuid4().hex[:12]}")

    def _path(self, layer: str) -> Path:
        return self.directory / (re.sub(r"[^\w.-]", "_", layer) + ".json")

    def record(self, layer: str, item_id: str, limit: float, call: str | None) -> None:
        """Best effort: a registry that cannot be written costs time, never the run."""
        entry = {"layer": layer, "item": item_id, "limit": limit, "call": call or "a backend call",
                 "at": time.time()}
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(descriptor, "w") as handle:
                json.dump(entry, handle)
            if not self._path(layer).exists():
                os.replace(temporary, self._path(layer))
            else:
                os.unlink(temporary)
        except OSError:
            pass

    def hung(self, layer: str) -> dict | None:
        return _read(self._path(layer))

    def all(self) -> list[dict]:
        """Every hang of the run, earliest first."""
        try:
            entries = [_read(path) for path in self.directory.glob("*.json")]
        except OSError:
            return []
        return sorted((entry for entry in entries if entry), key=lambda entry: entry["at"])

    def first(self) -> dict | None:
        """The earliest hang of the run, or None."""
        entries = self.all()
        return entries[0] if entries else None


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
