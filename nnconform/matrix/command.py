"""``nnconform matrix``: the conformance suite against several backends, as one table.

    nnconform matrix [--backends builtin,mypkg.layers:Backend] [--out-md docs/matrix.md]
                     [--out-html docs/matrix.html] [-n N] [--backend-timeout S] [--reports-dir DIR]
                     [pytest arguments...]
    nnconform matrix --from-reports DIR/*.run.json [report.json ...] [--out-md ...] [--out-html ...]

The first form runs each backend in a process of its own, one after another
(nnconform.matrix.run), and rewrites both outputs after each backend, so an
interrupted matrix keeps what had finished. The second renders from conformance
reports and run records alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from nnconform.backends import BUILTIN
from nnconform.matrix import render_html, render_md
from nnconform.matrix.run import Settings, record_path, run_backend
from nnconform.matrix.table import Column, MatrixError, build, load_columns, pending_column
from nnconform.report import write_atomic

DEFAULT_LIMIT = 1800.0
# Arguments the matrix sets for each run itself.
RESERVED = ("--backend", "--conformance-json", "--conformance-md")


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="nnconform matrix", allow_abbrev=False,
        description="Run the conformance suite against several backends, each in its own process, and write "
                    "a matrix of clauses by backends as Markdown and as a self-contained HTML page. Arguments "
                    "it does not know are passed to each run's pytest (-k, -m, --max-examples, --seed, ...).")
    parse.add_argument("--backends", default="builtin", metavar="LIST",
                       help="comma-separated backends, in column order; 'builtin' stands for every built-in "
                            f"backend ({', '.join(BUILTIN)}); default: builtin")
    parse.add_argument("--out-md", default="docs/matrix.md", metavar="PATH", help="default: docs/matrix.md")
    parse.add_argument("--out-html", default="docs/matrix.html", metavar="PATH", help="default: docs/matrix.html")
    parse.add_argument("-n", "--jobs", metavar="N", help="pytest-xdist workers for each run (-n N)")
    parse.add_argument("--backend-timeout", type=float, default=DEFAULT_LIMIT, metavar="SECONDS",
                       help=f"wall-time limit of each backend's run, after which it is killed (0: none; "
                            f"default {DEFAULT_LIMIT:g})")
    parse.add_argument("--reports-dir", metavar="DIR",
                       help="where each backend's report, run record and output go (default: a new temporary "
                            "directory, kept and printed at the end)")
    parse.add_argument("--from-reports", nargs="+", metavar="PATH",
                       help="render from these conformance reports and run records (*.run.json) without running")
    return parse


def main(argv: list[str]) -> int:
    args, pytest_args = parser().parse_known_args(argv)
    pytest_args = pytest_args[1:] if pytest_args[:1] == ["--"] else pytest_args
    reserved = [arg for arg in pytest_args if arg.split("=", 1)[0] in RESERVED]
    if reserved:
        return _usage(f"{reserved[0].split('=', 1)[0]} is set by the matrix for each run; "
                      "choose backends with --backends")
    if args.backend_timeout < 0:
        return _usage(f"--backend-timeout expects seconds (0: none), got {args.backend_timeout:g}")
    outputs = Path(args.out_md), Path(args.out_html)
    if args.from_reports:
        if pytest_args:
            return _usage(f"--from-reports renders without running; unexpected arguments {pytest_args}")
        try:
            columns = load_columns(args.from_reports)
        except MatrixError as error:
            return _usage(str(error))
        write_outputs(columns, *outputs)
        print(f"nnconform matrix: {len(columns)} backend(s) from reports -> {outputs[0]}, {outputs[1]}")
        return 0
    specs = backend_list(args.backends)
    if not specs:
        return _usage("--backends names no backend")
    reports_dir = Path(args.reports_dir) if args.reports_dir else Path(tempfile.mkdtemp(prefix="nnconform-matrix-"))
    settings = Settings(reports_dir.absolute(), args.backend_timeout, args.jobs, tuple(pytest_args))
    return run_matrix(specs, settings, *outputs)


def backend_list(text: str) -> list[str]:
    specs: list[str] = []
    for part in (part.strip() for part in text.split(",")):
        for spec in (list(BUILTIN) if part == "builtin" else [part] if part else []):
            if spec not in specs:
                specs.append(spec)
    return specs


def run_matrix(specs: list[str], settings: Settings, out_md: Path, out_html: Path) -> int:
    print(f"nnconform matrix: {len(specs)} backend(s), one after another: {', '.join(specs)}; reports in "
          f"{settings.reports_dir}", flush=True)
    columns: list[Column] = []
    try:
        for index, spec in enumerate(specs):
            print(f"nnconform matrix: {spec}: running ...", flush=True)
            try:
                record = run_backend(spec, settings)
            finally:
                path = record_path(settings.reports_dir, spec)
                if path.is_file():
                    columns.append(load_columns([path])[0])
                write_outputs(columns + [pending_column(later) for later in specs[len(columns):]], out_md, out_html)
            print(f"nnconform matrix: {spec}: {record['message']} ({record['seconds']:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print(f"nnconform matrix: interrupted; {out_md} and {out_html} hold what had finished", file=sys.stderr)
        return 130
    print(f"nnconform matrix: wrote {out_md} and {out_html}; re-render with: nnconform matrix --from-reports "
          f"{settings.reports_dir}{os.sep}*.run.json", flush=True)
    return 0


def write_outputs(columns: list[Column], out_md: Path, out_html: Path) -> None:
    matrix = build(columns)
    for path, text in ((out_md, render_md.render(matrix, findings_link(out_md), page=_relative(out_html, out_md))),
                       (out_html, render_html.render(matrix, findings_link(out_html)))):
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path.absolute(), text)


def findings_link(output: Path) -> str:
    """docs/findings.md (of the directory the matrix runs in) as seen from ``output``."""
    return _relative(Path("docs/findings.md"), output)


def _relative(target: Path, output: Path) -> str:
    return Path(os.path.relpath(target.absolute(), output.absolute().parent)).as_posix()


def _usage(message: str) -> int:
    print(f"nnconform matrix: error: {message}", file=sys.stderr)
    return 4

