"""Print the Markdown table of every spec clause, or write it into README.md.

    python scripts/clause_table.py                   # print the table
    python scripts/clause_table.py --write README.md # replace the marked region

Only the region between the markers below is ever touched; meta_tests/test_readme.py
fails when that region differs from what this script generates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hypothesis import settings

from nnconform import profiles
from nnconform.items import decision_alpha, statistical_decisions
from nnconform.spec import SpecSet, load_specs

START, END = "<!-- clauses:start -->", "<!-- clauses:end -->"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def default_examples() -> int:
    return settings.get_profile(profiles.DEFAULT_PROFILE).max_examples


def clause_table(specs: SpecSet) -> str:
    """The clause table and, below it, the statistical guarantees of the random clauses."""
    examples = default_examples()
    alpha = decision_alpha(specs, examples)
    lines = ["| id | family | layers | mode | check | statement |", "|---|---|---|---|---|---|"]
    for clause in specs.clauses:
        lines.append(f"| `{clause.id}` | {clause.family} | {', '.join(clause.layers)} | {', '.join(clause.modes)} "
                     f"| {clause.check} | {_cell(clause.statement)} |")
    statistical = [c for c in specs.clauses if c.statistical]
    if statistical:
        lines += ["",
                  f"Statistical clauses: each decision runs at alpha = {alpha:.3g}, the false-alarm budget "
                  f"{specs.false_alarm_budget:g} split (Bonferroni) over the {statistical_decisions(specs, examples)} "
                  f"statistical decisions of a default run ({examples} examples per item, times each clause's "
                  f"`examples` share). n is the sample size drawn at p = 0.5.",
                  "",
                  "| id | alpha | power | delta | n | n counts | test |", "|---|---|---|---|---|---|---|"]
        for clause in statistical:
            stats = clause.statistics
            lines.append(f"| `{clause.id}` | {alpha:.3g} | {stats['power']:g} | {stats['delta']:g} | {stats['n']} "
                         f"| {_cell(stats['n_counts'])} | {_cell(stats['why'])} |")
    return "\n".join(lines) + "\n"


def replace_region(text: str, table: str) -> str:
    """text with the region between the markers replaced by the table; the markers are
    appended to an empty text, and required in any other."""
    if not text.strip():
        text = f"{START}\n{END}\n"
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"expected exactly one {START} followed by exactly one {END}")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{table}{END}{tail}"


def region(text: str) -> str | None:
    """The current content between the markers, or None when they are missing."""
    if text.count(START) != 1 or text.count(END) != 1:
        return None
    return text.split(START)[1].split(END)[0].removeprefix("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="README", type=Path,
                        help="replace the region between the clause markers in this file (created if missing)")
    parser.add_argument("--spec-dir", type=Path, default=None, help="spec directory (default: the suite's specs/)")
    args = parser.parse_args(argv)
    table = clause_table(load_specs(args.spec_dir))
    if args.write is None:
        sys.stdout.write(table)
        return 0
    old = args.write.read_text() if args.write.exists() else ""
    try:
        new = replace_region(old, table)
    except ValueError as error:
        parser.error(f"{args.write}: {error}")
    if new != old:
        args.write.write_text(new)
    print(f"{args.write}: clause table {'updated' if new != old else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
