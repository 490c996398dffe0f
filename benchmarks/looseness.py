"""How loose each reference bound is on a real backend: the largest observed error
divided by the allowed error, per clause and dtype, from a JSON report.

    python -m pytest -n 2 --conformance-json report.json
    python -m benchmarks.looseness report.json --write benchmarks/RESULTS.md

A value near 1 means the bound is tight against that backend (a value above 1 is a
failure); a value far below 1 means the backend's error is far inside the bound,
which is where a faulty layer could hide. With --write, the table replaces the
section between the looseness markers of the file (added at the end if absent).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

START, END = "<!-- looseness:start -->", "<!-- looseness:end -->"
DTYPES = ("float16", "bfloat16", "float32", "float64")


def table(report: dict) -> str:
    """Markdown: one row a clause with reference comparisons, one column a dtype; each
    cell the largest looseness over the clause's layers, '·' where none was made."""
    worst: dict[str, dict[str, float]] = defaultdict(dict)
    deviating: set[tuple[str, str]] = set()
    for item in report["items"]:
        value = item.get("looseness")
        if value is None:
            continue
        if item["status"] not in ("passed", "no-longer-deviates", "now-passing"):  # a failure's error is a finding, not the bound's looseness
            deviating.add((item["clause"], item["dtype"]))
            worst[item["clause"]].setdefault(item["dtype"], None)
            continue
        cell = worst[item["clause"]]
        cell[item["dtype"]] = max(cell.get(item["dtype"]) or 0.0, value)
    backend = report.get("backend", {})
    name = backend.get("name", "?") if isinstance(backend, dict) else backend
    version = backend.get("version", "") if isinstance(backend, dict) else ""
    lines = [f"Largest observed error / allowed error, per clause and dtype, on `{name}` {version} "
             f"(profile {report['run'].get('profile')}, {report['run'].get('max_examples')} examples per item; worst over each clause's layers and examples; "
             f"passing items only; † marks a cell where some item failed or is a known deviation, whose "
             f"error is a finding, not the bound's). Clauses without reference comparisons are left out.", "",
             "| clause | " + " | ".join(DTYPES) + " |", "|---|" + "---|" * len(DTYPES)]
    for clause in sorted(worst):
        cells = [_cell(worst[clause].get(d, "·"), (clause, d) in deviating) for d in DTYPES]
        lines.append(f"| `{clause}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value, deviates: bool) -> str:
    text = "·" if value in ("·", None) else f"{value:.3g}"
    return f"{text} †" if deviates else text


def write(path: Path, body: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{START}\n## Looseness of the reference bounds\n\n{body}{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a JSON report (--conformance-json)")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN", help="replace the looseness section of this file")
    args = parser.parse_args(argv)
    body = table(json.loads(args.report.read_text(encoding="utf-8")))
    if args.write:
        write(args.write, body)
    else:
        print(body, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
