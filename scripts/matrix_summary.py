"""The README's conformance-matrix summary, generated from docs/matrix.md's summary row.

    python scripts/matrix_summary.py                   # print the table
    python scripts/matrix_summary.py --write README.md # replace the marked region

One row per backend column: the counts of a finished run (passed, known deviations,
unsupported, failed), its time and version; for a column without them (unavailable,
not installed, killed), the cell's text. meta_tests/test_matrix.py checks that the
committed README holds the table that the committed docs/matrix.md generates.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

START, END = "<!-- matrix-summary:start -->", "<!-- matrix-summary:end -->"
COUNTS = re.compile(r"passed (\d+) · known (\d+) · unsupported (\d+) · failed (\d+)")


def summary_cells(markdown: str) -> list[tuple[str, str]]:
    """(backend title, summary cell) for each column of a matrix page's Markdown."""
    lines = markdown.splitlines()
    header = next((line for line in lines if line.startswith("| clause")), None)
    summary = next((line for line in lines if line.startswith("| **summary**")), None)
    if header is None or summary is None:
        raise ValueError("not a conformance matrix: no '| clause' header or '| **summary**' row")
    titles = [cell.strip(" `") for cell in header.split("|")[1:-1]][1:]
    cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", summary)[1:-1]][1:]
    return list(zip(titles, cells))


def summary_table(markdown: str) -> str:
    rows = ["| backend | passed | known deviations | unsupported | failed | suite time | version |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for title, cell in summary_cells(markdown):
        first, _, second = cell.partition("<br>")
        counts = COUNTS.fullmatch(first)
        if counts:
            seconds, _, version = second.partition(" · ")
            rows.append(f"| `{title}` | " + " | ".join(counts.groups()) + f" | {seconds} | {version} |")
        else:
            rows.append(f"| `{title}` | {first.removeprefix('🚫 ')} | | | | | {second.replace('<br>', '; ')} |")
    return "\n".join(rows)


def region(text: str) -> str | None:
    if text.count(START) != 1 or text.count(END) != 1:
        return None
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default="docs/matrix.md")
    parser.add_argument("--write", metavar="README", help="replace the region between the markers in this file")
    args = parser.parse_args(argv)
    table = summary_table(Path(args.matrix).read_text())
    if not args.write:
        print(table)
        return 0
    path = Path(args.write)
    text = path.read_text()
    if region(text) is None:
        print(f"{path}: needs exactly one {START} and one {END}", file=sys.stderr)
        return 1
    before, rest = text.split(START, 1)
    path.write_text(before + START + "\n" + table + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
