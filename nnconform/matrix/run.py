"""Run the conformance suite against one backend after another, each in a process of
its own, and record how each run went.

For every backend, first a probe process loads it (nnconform.matrix.probe): a backend
whose framework is not installed, or that is unavailable (torch-cuda without a GPU),
gets a column that says so and no suite run. Otherwise the suite runs as
``python -m nnconform.cli --backend SPEC --conformance-json=DIR/SPEC.json ...`` in a new
process group, under a wall-time limit (the probe has a fixed limit of its own). A run
that crashes or hangs is killed with its whole group (xdist workers included) and
recorded with its exit status and the tail of its stderr; the partial JSON report it
left (the suite rewrites it as each item starts) is kept, and the next backend runs.

Per backend the reports directory holds ``SLUG.json`` (the conformance report),
``SLUG.run.json`` (the run record below), ``SLUG.stdout.txt`` and ``SLUG.stderr.txt``.
A run record is what ``nnconform matrix --from-reports`` reads back:

    {"kind": "nnconform-matrix-run", "version": 1, "backend": SPEC,
     "state": "finished" | "crashed" | "timed-out" | "interrupted" | "cannot-load" | "unavailable",
     "message": one line, "probe": {name, version, device, unavailable, error},
     "exit_status": int | null, "seconds": wall seconds, "limit": seconds (0: none),
     "command": the command line, "report": "SLUG.json" | null,
     "stdout_tail": text, "stderr_tail": text}
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nnconform.report import write_atomic

RECORD_KIND = "nnconform-matrix-run"
RECORD_VERSION = 1
# seconds: loading a backend (importing its framework) takes far less, even on a busy
# machine; --backend-timeout limits the suite run, not this.
PROBE_LIMIT = 300
TAIL_LINES = 30
TAIL_CHARS = 4000
KILL_GRACE = 10  # seconds between SIGTERM and SIGKILL to a run's process group
_HEADLINE = re.compile(r"^(Fatal Python error:|Traceback \(most recent call last\)|ERROR:|[\w.]+(Error|Exception): )")


@dataclass(frozen=True)
class Settings:
    reports_dir: Path
    limit: float = 0.0               # wall seconds per backend run, 0 for none
    jobs: str | None = None          # pytest-xdist -n
    pytest_args: tuple[str, ...] = ()


@dataclass
class Finished:
    exit_status: int | None
    seconds: float
    timed_out: bool = False
    interrupted: bool = False


def slug(spec: str) -> str:
    """A file name for a backend spec ("mypkg.layers:Backend" -> "mypkg.layers_Backend")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("._") or "backend"


def record_path(reports_dir: Path, spec: str) -> Path:
    return reports_dir / f"{slug(spec)}.run.json"


def suite_command(spec: str, report: Path, settings: Settings) -> list[str]:
    jobs = ["-n", settings.jobs] if settings.jobs else []
    return [sys.executable, "-m", "nnconform.cli", "--backend", spec, f"--conformance-json={report}", *jobs,
            *settings.pytest_args]


def shown(command: list[str]) -> str:
    """The command as a person would type it: ``nnconform ...`` for the suite, ``python -m`` otherwise."""
    if command[1:3] == ["-m", "nnconform.cli"]:
        return shlex.join(["nnconform", *command[3:]])
    return shlex.join(["python", *command[1:]])


def run_backend(spec: str, settings: Settings) -> dict:
    """Probe, then run the suite against one backend; write and return its run record.
    On Ctrl-C the run is killed, its record written (state "interrupted"), and
    KeyboardInterrupt raised again."""
    directory = settings.reports_dir
    directory.mkdir(parents=True, exist_ok=True)
    name = slug(spec)
    started = time.monotonic()
    record = {"kind": RECORD_KIND, "version": RECORD_VERSION, "backend": spec, "state": None, "message": "",
              "probe": None, "exit_status": None, "seconds": None, "limit": settings.limit, "command": None,
              "report": None, "stdout_tail": "", "stderr_tail": ""}
    try:
        _probe_then_run(spec, settings, record, directory, name)
    finally:
        if record["state"] is None:  # Ctrl-C outside the child processes
            record.update(state="interrupted", message="the matrix run was interrupted (Ctrl-C)")
        record["seconds"] = round(time.monotonic() - started, 3)
        write_atomic(record_path(directory, spec), json.dumps(record, indent=1) + "\n")
    if record["state"] == "interrupted":
        raise KeyboardInterrupt
    return record


def _probe_then_run(spec: str, settings: Settings, record: dict, directory: Path, name: str) -> None:
    out, err = directory / f"{name}.probe.stdout.txt", directory / f"{name}.probe.stderr.txt"
    probe = [sys.executable, "-m", "nnconform.matrix.probe", spec]
    record["command"] = shown(probe)
    finished = run_process(probe, PROBE_LIMIT, out, err)
    info = _last_json_line(out)
    if finished.interrupted or finished.timed_out or info is None:
        _record_failure(record, finished, out, err, "loading the backend (probe)", PROBE_LIMIT)
        return
    record["probe"] = info
    if info.get("error"):
        record.update(state="cannot-load", message=info["error"])
        return
    if info.get("unavailable"):
        record.update(state="unavailable", message=f"unavailable: {info['unavailable']}")
        return
    report = directory / f"{name}.json"
    report.unlink(missing_ok=True)  # a report left from an earlier run must not pass for this one's
    out, err = directory / f"{name}.stdout.txt", directory / f"{name}.stderr.txt"
    command = suite_command(spec, report, settings)
    record["command"] = shown(command)
    finished = run_process(command, settings.limit, out, err)
    record["report"] = report.name if report.is_file() else None
    complete = _report_complete(report)
    if finished.interrupted or finished.timed_out or finished.exit_status not in (0, 1) or not complete:
        _record_failure(record, finished, out, err, "the suite run", settings.limit,
                        partial=record["report"] is not None)
        return
    record.update(state="finished", exit_status=finished.exit_status,
                  message=f"finished: exit status {finished.exit_status} "
                          f"({'passed' if finished.exit_status == 0 else 'failed'})",
                  stderr_tail=tail(err))


def _record_failure(record: dict, finished: Finished, out: Path, err: Path, what: str, limit: float,
                    partial: bool = False) -> None:
    if finished.interrupted:
        state, message = "interrupted", f"{what} was interrupted (Ctrl-C) after {finished.seconds:.0f} s"
    elif finished.timed_out:
        state, message = "timed-out", (f"{what} was killed after {limit:g} s (--backend-timeout), "
                                       f"exit status {finished.exit_status}")
    else:
        state, message = "crashed", f"{what} ended with {describe_exit(finished.exit_status)}"
    if partial:
        message += "; its partial report holds what had finished"
    elif what == "the suite run":
        message += "; it wrote no report"
    record.update(state=state, message=message, exit_status=finished.exit_status, stdout_tail=tail(out),
                  stderr_tail=tail(err))


def describe_exit(status: int | None) -> str:
    if status is None:
        return "no exit status"
    if status < 0:
        try:
            return f"signal {signal.Signals(-status).name} (exit status {status})"
        except ValueError:
            return f"signal {-status} (exit status {status})"
    meaning = {2: "interrupted", 3: "pytest internal error", 4: "usage error", 5: "no tests collected"}.get(status)
    return f"exit status {status}" + (f" ({meaning})" if meaning else "")


def run_process(command: list[str], limit: float, stdout: Path, stderr: Path) -> Finished:
    """Run ``command`` in a new process group with its output in files; past ``limit``
    seconds (0: none) or on Ctrl-C, end the whole group: SIGTERM, then SIGKILL."""
    started = time.monotonic()
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   start_new_session=True)
        try:
            status = process.wait(timeout=limit or None)
            return Finished(status, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            return Finished(_end_group(process), time.monotonic() - started, timed_out=True)
        except KeyboardInterrupt:
            return Finished(_end_group(process), time.monotonic() - started, interrupted=True)


def _end_group(process: subprocess.Popen) -> int | None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return process.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            continue
    return process.poll()


def tail(path: Path) -> str:
    """The last lines of a text file, each and all of them cut to a readable size. When
    the headline of the error they belong to ("Fatal Python error: Aborted" above a
    long stack dump, "Traceback ...") lies further up, it comes first, then "...". """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    text = "\n".join(line if len(line) <= 300 else line[:297] + "..." for line in lines[-TAIL_LINES:])
    if len(text) > TAIL_CHARS:
        text = "..." + text[-TAIL_CHARS:]
    earlier = [line for line in lines[:-TAIL_LINES] if _HEADLINE.match(line)]
    return f"{earlier[-1][:300]}\n...\n{text}" if earlier else text


def _last_json_line(path: Path) -> dict | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        value = json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _report_complete(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text(encoding="utf-8"))["run"]["complete"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
