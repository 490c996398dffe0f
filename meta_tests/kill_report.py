"""The kill report: run the conformance suite against every zoo member and report
which clauses caught which fault, the kill rate, the surviving faults, the false
alarms on correct alternatives and the wall time.

    python meta_tests/kill_report.py [--subset] [--family NAME ...] [--json PATH] [--markdown PATH] [--seed N] [--jobs N]

With --subset, only the members marked for CI run: each fault against the
clauses it must trip, each correct alternative against its whole family.

Each member runs in its own pytest process (in parallel, --jobs at a time),
restricted to the spec family it touches, at the default profile's number of
examples and with a fixed --seed so a report can be repeated. Shrinking is
switched off: it only minimises a failure already found, so what is caught is
exactly what a user's default run catches, without the cost of shrinking.
Exit status: 0 when every fault is killed and every alternative passes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from meta_tests.zoo import KINDS, MEMBERS, Member  # noqa: E402

DEFAULT_SEED = 20240601
CONFORMANCE_TESTS = "tests/test_conformance.py"


# --------------------------------------------------------------------- worker side

class OutcomeCollector:
    """A pytest plugin recording each conformance item's outcome, and switching off
    Hypothesis's shrink phase after the suite has loaded its profile."""

    def __init__(self):
        self.items: dict[str, dict] = {}

    def pytest_configure(self, config):
        from hypothesis import Phase, settings
        settings.register_profile("kill-report", parent=settings.default,
                                  phases=[p for p in settings.default.phases if p not in (Phase.shrink, Phase.explain)])
        settings.load_profile("kill-report")

    pytest_configure.trylast = True

    def pytest_runtest_logreport(self, report):
        item = report.nodeid.rpartition("[")[2].rstrip("]")
        if report.when == "call" or report.outcome != "passed":
            message = ""
            if report.failed:
                tag = f"[{item.split(':', 1)[0]}]"
                lines = report.longreprtext.splitlines()
                message = next((line[line.index(tag):] for line in lines if tag in line), lines[-1] if lines else "")
            self.items[item] = {"outcome": report.outcome, "when": report.when, "message": message.strip()[:400]}


def run_worker(backend: str, family: str, keyword: str | None, seed: int, out: str) -> int:
    import pytest
    collector = OutcomeCollector()
    args = ["-q", "-p", "no:xdist", "--backend", backend, "-m", family, "--seed", str(seed),
            "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), str(ROOT / CONFORMANCE_TESTS)]
    if keyword:
        args += ["-k", keyword]
    with open(os.devnull, "w") as sink:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = sink
        try:
            code = pytest.main(args, plugins=[collector])
        finally:
            sys.stdout, sys.stderr = stdout, stderr
    Path(out).write_text(json.dumps({"exit_code": int(code), "items": collector.items}))
    return 0


# --------------------------------------------------------------------- driver side

@dataclass
class MemberResult:
    target: str
    name: str
    role: str                   # "fault" or "alternative"
    kind: str
    family: str
    trigger: str
    description: str
    expected: list[str]
    caught_by: list[str] = field(default_factory=list)
    failed_items: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    exit_code: int = 0
    error: str = ""
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if self.role == "fault":
            return "killed" if self.caught_by else "survived"
        return "false-alarm" if self.caught_by else "passed"


def clause_of(item: str) -> str:
    return item.split(":", 1)[0]


def run_member(member: Member, seed: int, clauses: list[str] | None = None, timeout: float = 900) -> MemberResult:
    """Run one member (optionally only the given clauses) in a pytest subprocess."""
    backend = _load_backend(member)
    result = MemberResult(member.target, backend.name if backend else member.target,
                          "fault" if member.is_fault else "alternative", member.kind, member.family, member.trigger,
                          _description(backend), list(member.trips))
    keyword = " or ".join(f"{clause}:" for clause in clauses) if clauses else None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "outcomes.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", member.backend, member.family,
                   "--seed", str(seed), "--out", str(out)] + (["--keyword", keyword] if keyword else [])
        try:
            proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result.error = f"timed out after {timeout:.0f} s"
            return result
        result.seconds = round(time.perf_counter() - started, 2)
        if proc.returncode != 0 or not out.exists():
            result.error = f"worker exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}"
            return result
        data = json.loads(out.read_text())
    result.exit_code = data["exit_code"]
    if result.exit_code not in (0, 1):
        result.error = f"pytest exited {result.exit_code} (usage error, or no items collected)"
    counts: dict[str, int] = {}
    for item, outcome in sorted(data["items"].items()):
        counts[outcome["outcome"]] = counts.get(outcome["outcome"], 0) + 1
        if outcome["outcome"] == "failed":
            result.failed_items.append(item)
            result.messages.setdefault(clause_of(item), outcome["message"])
    result.counts = counts
    result.caught_by = sorted({clause_of(item) for item in result.failed_items})
    if not data["items"] and not result.error:
        result.error = "no conformance item ran"
    return result


def _load_backend(member: Member):
    from nnconform.backends import load_backend
    try:
        return load_backend(member.backend)
    except Exception:
        return None


def _description(backend) -> str:
    doc = (type(backend).__doc__ or "") if backend is not None else ""
    return " ".join(doc.split())


def run_members(members: list[Member], seed: int, jobs: int,
                clauses_of=lambda member: None) -> list[MemberResult]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda m: run_member(m, seed, clauses_of(m)), members))


def subset_clauses(member: Member) -> list[str] | None:
    """In the CI subset a fault runs only against the clauses it must trip (enough
    to show it killed); a correct alternative runs its whole family."""
    return list(member.trips) if member.is_fault else None


def all_clause_ids() -> list[str]:
    from nnconform.spec import load_specs
    return [clause.id for clause in load_specs().clauses]


def summarise(results: list[MemberResult], seed: int, subset: bool, wall: float) -> dict:
    faults = [r for r in results if r.role == "fault"]
    alternatives = [r for r in results if r.role == "alternative"]
    killed = [r for r in faults if r.status == "killed"]
    clauses = all_clause_ids()
    caught = {c for r in faults for c in r.caught_by}
    return {
        "seed": seed,
        "subset": subset,
        "wall_seconds": round(wall, 1),
        "faults": len(faults),
        "killed": len(killed),
        "kill_rate": round(len(killed) / len(faults), 4) if faults else None,
        "survivors": [r.name for r in faults if r.status == "survived"],
        "alternatives": len({r.target for r in alternatives}),
        "false_alarms": [{"alternative": r.name, "family": r.family, "clauses": r.caught_by,
                          "messages": r.messages} for r in alternatives if r.status == "false-alarm"],
        "errors": [{"member": r.name, "family": r.family, "error": r.error} for r in results if r.error],
        "missed_expectations": [{"fault": r.name, "clauses": sorted(set(r.expected) - set(r.caught_by))}
                                for r in faults if set(r.expected) - set(r.caught_by)],
        "kinds": {kind: sum(1 for r in faults if r.kind == kind) for kind in KINDS},
        "clauses": clauses,
        "clauses_catching_no_fault": [c for c in clauses if c not in caught],
        "members": [asdict(r) | {"status": r.status} for r in results],
    }


# --------------------------------------------------------------------- rendering

def render_text(report: dict) -> str:
    members = [m for m in report["members"] if m["role"] == "fault"]
    clauses = [c for c in report["clauses"] if any(c in m["caught_by"] for m in members)] or report["clauses"]
    lines = ["Kill matrix (rows: faults; columns: clauses, numbered below; X = the clause failed the fault)", ""]
    width = max(len(m["name"]) for m in members) if members else 10
    header = " " * (width + 2) + "".join(f"{i % 100:>3}" for i in range(1, len(clauses) + 1))
    lines.append(header)
    for m in members:
        cells = "".join(f"{'X' if c in m['caught_by'] else '.':>3}" for c in clauses)
        lines.append(f"{m['name']:<{width}}  {cells}   {m['status']}")
    lines += ["", "Clauses:"] + [f"{i:>3}  {c}" for i, c in enumerate(clauses, 1)]
    lines += ["", *summary_lines(report)]
    return "\n".join(lines)


def summary_lines(report: dict) -> list[str]:
    rate = report["kill_rate"]
    alarms = "; ".join(f"{a['alternative']} ({a['family']}): {', '.join(a['clauses'])}" for a in report["false_alarms"])
    errors = "; ".join(f"{e['member']} ({e['family']}): {e['error']}" for e in report["errors"])
    return [f"faults: {report['faults']}, killed: {report['killed']}, kill rate: "
            f"{'n/a' if rate is None else f'{100 * rate:.1f}%'}",
            f"surviving faults: {', '.join(report['survivors']) or 'none'}",
            f"correct alternatives: {report['alternatives']}, false alarms: {alarms or 'none'}",
            f"errors: {errors or 'none'}",
            f"clauses that caught no fault: {', '.join(report['clauses_catching_no_fault']) or 'none'}",
            f"wall time: {report['wall_seconds']} s (seed {report['seed']}{', subset' if report['subset'] else ''})"]


def render_markdown(report: dict) -> str:
    faults = [m for m in report["members"] if m["role"] == "fault"]
    alternatives = [m for m in report["members"] if m["role"] == "alternative"]
    rate = report["kill_rate"]
    out = ["# Kill report", "",
           "Generated by `python meta_tests/kill_report.py --markdown docs/kill-report.md`: the conformance suite "
           "run at its default settings against every member of the zoo in `meta_tests/zoo/` (faulty backends "
           "with one realistic fault each, and correct alternatives that must pass).", "",
           "## Summary", "",
           f"- Faults: **{report['faults']}**, killed: **{report['killed']}**, kill rate: "
           f"**{'n/a' if rate is None else f'{100 * rate:.1f}%'}**",
           f"- Surviving faults: {', '.join(report['survivors']) or 'none'}",
           f"- Correct alternatives: **{report['alternatives']}**, false alarms: "
           f"**{len(report['false_alarms'])}**",
           f"- Wall time: **{report['wall_seconds']} s** on {os.cpu_count()} cores "
           f"(seed {report['seed']}{', CI subset' if report['subset'] else ', full zoo'})",
           f"- Clauses that caught no fault: {', '.join(report['clauses_catching_no_fault']) or 'none'}", "",
           "## Faults by kind", "", "| kind | faults |", "|---|---|"]
    out += [f"| {kind} | {count} |" for kind, count in report["kinds"].items()]
    out += ["", "## Kill matrix", "",
            "Each fault, the inputs it needs to show (where it hides from others), and every clause that failed it.", "",
            "| fault | kind | shows on | caught by | status |", "|---|---|---|---|---|"]
    out += [f"| `{m['name']}` | {m['kind']} | {m['trigger'] or 'any input'} | "
            f"{', '.join(f'`{c}`' for c in m['caught_by']) or '—'} | {m['status']} |" for m in faults]
    out += ["", "## Correct alternatives", "", "| alternative | family | status | what differs |", "|---|---|---|---|"]
    out += [f"| `{m['name']}` | {m['family']} | {m['status']} | {m['description']} |" for m in alternatives]
    if report["false_alarms"]:
        out += ["", "## False alarms", "", "A clause that fails a correct alternative is wrong, or its tolerance is.", ""]
        out += [f"- `{a['alternative']}` ({a['family']}), `{clause}`: {message}"
                for a in report["false_alarms"] for clause, message in a["messages"].items()]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", action="store_true", help="only the CI subset: every kind, all alternatives")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the Markdown summary (docs/kill-report.md)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the suite's --seed for every run")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="members run in parallel")
    parser.add_argument("--family", action="append", metavar="NAME",
                        help="only the members of this spec family (repeatable)")
    parser.add_argument("--from-json", metavar="PATH", help="render a saved JSON report instead of running")
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "FAMILY"), help=argparse.SUPPRESS)
    parser.add_argument("--keyword", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(*args.worker, args.keyword, args.seed, args.out)
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
        print(render_text(report))
        if args.markdown:
            Path(args.markdown).write_text(render_markdown(report))
        return 0
    members = [m for m in MEMBERS if (m.subset or not args.subset) and (not args.family or m.family in args.family)]
    started = time.perf_counter()
    results = run_members(members, args.seed, args.jobs, subset_clauses if args.subset else lambda member: None)
    report = summarise(results, args.seed, args.subset, time.perf_counter() - started)
    print(render_text(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(report))
    return 0 if not (report["survivors"] or report["false_alarms"] or report["errors"]) else 1


if __name__ == "__main__":
    sys.exit(main())
