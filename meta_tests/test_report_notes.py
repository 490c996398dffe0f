"""What the run records beyond a status: "limited" (why an item ran with reduced
power) and "conventions" (the named conventions a passing item was judged under)
reach the terminal summary, the JSON report and the Markdown report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema

from nnconform.items import all_items
from nnconform.markdown import render_markdown
from nnconform.report import build_document, platform_info
from nnconform.spec import load_specs
from nnconform.summary import ConformanceSummary, Outcome

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
LIMITED = "the backend cannot load_state: the layer's own initial state was used"


class _Config:
    def getoption(self, name, default=None):
        return default


class _Terminal:
    def __init__(self):
        self.lines = []

    def section(self, title):
        self.lines.append(f"== {title}")

    def write_line(self, line, **markup):
        self.lines.append(line)


def summary_with_notes() -> tuple[ConformanceSummary, dict]:
    items = {item.id: item for item in all_items(load_specs()) if item.dtype == "float32"}
    chosen = list(items)[:4]
    summary = ConformanceSummary(_Config())
    records = [{"limited": LIMITED}, {"limited": LIMITED, "conventions": {"running_var": "biased"}},
               {"conventions": {"running_var": "biased", "momentum": "new"}}, {"conventions": {"x": "y"}}]
    for key, record, status in zip(chosen, records, ("passed", "passed", "passed", "failed")):
        summary.outcomes[key] = Outcome(status=status, record={"item": key, **record},
                                        message="[c] broke" if status == "failed" else "")
    return summary, {key: items[key] for key in chosen}


def meta() -> dict:
    return {"suite": {"name": "nnconform", "version": "0", "spec_files": [], "false_alarm_budget": 1e-4,
                      "decision_alpha": 1e-6},
            "backend": {"spec": "x", "name": "x", "version": None, "device": "cpu", "layers": [], "dtypes": [],
                        "autograd": False, "unavailable": None},
            "platform": platform_info(), "run": {"profile": "dev", "profile_source": "default", "seed": 1, "max_examples": 3,
                                    "clause_timeout": 0, "workers": None, "xfails_file": None, "skips_file": None,
                                    "strict_xfails": False, "known_deviations": None,
                                    "allow_nothing_checked": False, "arguments": []}}


def test_limited_and_conventions_in_terminal_json_and_markdown():
    summary, items = summary_with_notes()
    ids = list(items)
    terminal = _Terminal()
    summary.pytest_terminal_summary(terminal)
    assert f"note: 2 items ran with reduced power: {LIMITED} ({', '.join(sorted(ids[:2]))})" in terminal.lines
    assert f"note: 1 item passed under the conventions running_var=biased ({ids[1]})" in terminal.lines
    assert f"note: 1 item passed under the conventions momentum=new, running_var=biased ({ids[2]})" in terminal.lines
    assert not any("x=y" in line for line in terminal.lines), "a failed item passed under no convention"

    document = build_document(summary, items, meta(), complete=True, exit_status=1, started=time.monotonic(),
                              started_at="2026-01-01T00:00:00+00:00")
    jsonschema.validate(document, SCHEMA)
    entries = {entry["id"]: entry for entry in document["items"]}
    assert entries[ids[0]]["limited"] == LIMITED and entries[ids[0]]["conventions"] is None
    assert entries[ids[2]]["conventions"] == {"running_var": "biased", "momentum": "new"}
    assert entries[ids[2]]["limited"] is None
    assert (document["verdict"], document["checked"], document["nothing_checked"]) == ("failed", 4, False)

    markdown = render_markdown(document)
    assert f"### Checked with reduced power\n\n- {LIMITED}: 2 items (`{ids[0]}`, `{ids[1]}`)" in markdown
    assert "### Passed under conventions" in markdown
    assert f"- momentum=new, running_var=biased: 1 item (`{ids[2]}`)" in markdown
    assert "x=y" not in markdown
