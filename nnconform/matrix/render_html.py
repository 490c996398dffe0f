"""The conformance matrix as one self-contained HTML page (docs/matrix.html).

The table is rendered here, so the page shows the matrix without running a line of
script; the details of each cell (every item's status, message, reproduce command,
and for statistical clauses a plot of each decision) are embedded as JSON and drawn
by matrix.js when a cell is clicked. Style, script and data are inline: the page
needs no network access.
"""

from __future__ import annotations

import html
import json
from importlib import resources

from nnconform.matrix.render_md import header, summary_lines
from nnconform.matrix.table import CATEGORIES, SYMBOL, Cell, Column, Matrix, category, conventions_text, \
    findings_anchor

# The fields of a statistical decision that the plot and its caption use.
DECISION_FIELDS = ("test", "p", "alpha", "n", "statistic", "p_value", "expected", "observed", "interval",
                   "expected_value", "passed")


def render(matrix: Matrix, findings: str = "findings.md") -> str:
    template = _asset("template.html")
    parts = {
        "TITLE": "nnconform conformance matrix",
        "STYLE": _asset("matrix.css"),
        "SCRIPT": _asset("matrix.js"),
        "HEADER": html.escape(header(matrix.columns, None).replace("`", "")),
        "TABLE": _table(matrix, findings),
        "LEGEND": _legend(),
        "DATA": _script_json(_data(matrix, findings)),
    }
    for key, value in parts.items():
        template = template.replace(f"<!--{key}-->", value)
    return template


def _asset(name: str) -> str:
    return resources.files("nnconform.matrix").joinpath(name).read_text(encoding="utf-8")


def _table(matrix: Matrix, findings: str) -> str:
    head = "".join(f'<th scope="col" class="backend">{html.escape(column.title)}</th>' for column in matrix.columns)
    summary = "".join(
        f'<td class="cell summary s-{column.state}" data-row="-1" data-col="{index}" tabindex="0">'
        f'{"<br>".join(html.escape(line) for line in summary_lines(column))}</td>'
        for index, column in enumerate(matrix.columns))
    rows = [f'<tr class="summary-row"><th scope="row">summary</th>{summary}</tr>']
    for row_index, row in enumerate(matrix.rows):
        cells = "".join(_cell(cell, row_index, col_index, findings) for col_index, cell in enumerate(row.cells))
        rows.append(f'<tr><th scope="row" title="{html.escape(row.statement)}"><code>{html.escape(row.clause)}</code>'
                    f'{" <span class=stat title=statistical>∿</span>" if row.statistical else ""}</th>{cells}</tr>')
    return (f'<table id="matrix" class="matrix"><thead><tr><th scope="col">clause</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _cell(cell: Cell, row: int, col: int, findings: str) -> str:
    counts = cell.counts()
    mixed = len(counts) > 1
    parts = []
    for key, number in counts or [("not-run", 0)]:
        text = f'<span class="sym">{SYMBOL[key]}' + (f"<sub>{number}</sub>" if mixed else "") + "</span>"
        if key == "convention":
            text += f' <span class="note">{html.escape("; ".join(cell.conventions()))}</span>'
        if key == "known":
            text += " " + " ".join(f'<a class="note" href="{html.escape(findings)}#{anchor}">{anchor}</a>'
                                   for anchor in cell.anchors())
        parts.append(text)
    return (f'<td class="cell k-{cell.category}" data-row="{row}" data-col="{col}" tabindex="0" '
            f'title="{len(cell.items)} item(s)">{" ".join(parts)}</td>')


def _legend() -> str:
    return "".join(f'<li><span class="swatch k-{key}">{symbol}</span> {html.escape(text)}</li>'
                   for key, symbol, text in CATEGORIES)


def _data(matrix: Matrix, findings: str) -> dict:
    return {
        "findings": findings,
        "symbols": SYMBOL,
        "columns": [_column_data(column) for column in matrix.columns],
        "rows": [{"clause": row.clause, "statement": row.statement, "statistical": row.statistical}
                 for row in matrix.rows],
        "cells": [[[_item_data(item) for item in cell.items] for cell in row.cells] for row in matrix.rows],
    }


def _column_data(column: Column) -> dict:
    record = column.record or {}
    run = (column.report or {}).get("run", {})
    return {"title": column.title, "spec": column.spec, "state": column.state, "message": column.message, "version": column.version,
            "device": column.device, "summary": column.summary(), "seconds": column.seconds,
            "command": record.get("command"), "exit_status": record.get("exit_status", run.get("exit_status")),
            "wall_seconds": record.get("seconds"), "stderr_tail": record.get("stderr_tail"),
            "stdout_tail": record.get("stdout_tail") if column.state != "finished" else None,
            "profile": run.get("profile"), "seed": run.get("seed"), "max_examples": run.get("max_examples")}


def _item_data(item: dict) -> dict:
    """What the details of one item show; absent fields are left out (a page holds
    hundreds of items and thousands of decisions)."""
    data = {"id": item["id"], "status": item["status"], "category": category(item), "message": item.get("message"),
            "reason": item.get("reason"), "reproduce": item.get("reproduce"),
            "conventions": conventions_text(item.get("conventions")) or None, "anchor": findings_anchor(item),
            "examples": item.get("examples"), "seconds": item.get("seconds")}
    data = {key: value for key, value in data.items() if value is not None}
    data["statistics"] = [{key: _short(decision[key]) for key in DECISION_FIELDS if decision.get(key) is not None}
                          for decision in item.get("statistics") or []]
    return data


def _short(value):
    """Numbers to 7 significant digits, more than a plot or its caption can show."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, list):
        return [_short(part) for part in value]
    return value


def _script_json(value) -> str:
    """JSON safe inside <script>: no "</script>", no "<!--"."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
