"""The Markdown conformance report (--conformance-md), rendered from the JSON
document that nnconform.report builds: a headline verdict, totals, failures first,
known deviations, notes on reduced power and conventions, then one table of
clauses by layer. Made for a CI step summary."""

from __future__ import annotations

from nnconform.summary import FAILING, STATUSES, count, describe_value

SYMBOLS = {
    "passed": "✅", "failed": "❌", "crashed": "💥", "timed-out": "⌛", "known-deviation": "📌", "xfailed": "🟡",
    "now-passing": "🎉", "no-longer-deviates": "✨", "skipped": "⏭", "unsupported": "🚫", "running": "❔",
    "not-run": "⬜",
}
VERDICTS = {"passed": "✅ passed", "failed": "❌ failed", "nothing-checked": "⚠️ nothing checked",
            "did-not-finish": "⚠️ did not finish"}
SHORT_DTYPES = {"float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64"}


def render_markdown(document: dict) -> str:
    """A summary that reads well as a GitHub step summary: headline, totals, failures
    first with their one-line reason, then one table of clauses by layer."""
    totals, backend, run = document["totals"], document["backend"], document["run"]
    failing = [entry for entry in document["items"] if entry["status"] in FAILING]
    lines = [f"## nnconform conformance: {VERDICTS[document['verdict']]}", "",
             f"Backend `{backend['name']}` {backend.get('version') or ''} (`--backend {backend['spec']}`, "
             f"device {backend.get('device')}); nnconform {document['suite']['version']}, profile "
             f"`{run['profile']}`, seed {run['seed']}, max examples {run['max_examples']}.", ""]
    if not run["complete"]:
        running = [entry["id"] for entry in document["items"] if entry["status"] == "running"]
        ended = ("the process ended before the session finished" if run["exit_status"] is None
                 else f"pytest exit status {run['exit_status']}")
        lines += [f"> **The run did not finish** ({ended}); this report holds what had finished." + (f" Running when it ended: {', '.join(f'`{r}`' for r in running)}."
                                     if running else ""), ""]
    if document["nothing_checked"]:
        lines += [f"> **Nothing was checked**: not one of the {sum(totals.values())} items ran its check"
                  + (f" ({_inline(document['backend']['unavailable'])})" if document["backend"].get("unavailable")
                     else "") + (". Accepted by `--allow-nothing-checked`." if document["passed"] else
                                 ". This fails the run unless `--allow-nothing-checked` is given."), ""]
    lines += ["| status | items |", "|---|---:|"]
    lines += [f"| {SYMBOLS[s]} {s} | {totals[s]} |" for s in STATUSES if totals[s]]
    lines.append(f"| **total** | **{sum(totals.values())}** |")
    if failing:
        lines += ["", f"### Failures ({len(failing)})", ""]
        for entry in failing:
            lines.append(f"- {SYMBOLS[entry['status']]} **{entry['status']}** `{entry['id']}`: "
                         f"{_inline(entry['message'] or '')}")
            if entry["reproduce"]:
                lines.append(f"  <br>reproduce with `{entry['reproduce']}`")
    now_passing = [entry for entry in document["items"] if entry["status"] == "now-passing"]
    if now_passing:
        lines += ["", f"### Now passing: remove from the xfails file ({len(now_passing)})", ""]
        lines += [f"- 🎉 `{entry['id']}` ({_inline(entry['reason'] or '')})" for entry in now_passing]
    lines += _known_sections(document["items"]) + _power_sections(document["items"])
    lines += ["", "### Clauses by layer", ""] + _tables(document)
    lines += ["", "Legend: " + " · ".join(f"{SYMBOLS[s]} {s}" for s in STATUSES)
              + ". A cell lists each dtype where they differ.", ""]
    expected = [entry for entry in document["items"] if entry["status"] in ("xfailed", "skipped")]
    if expected:
        lines += ["<details><summary>Expected failures and skips</summary>", ""]
        lines += [f"- {SYMBOLS[entry['status']]} `{entry['id']}`: {_inline(entry['reason'] or '')}"
                  for entry in expected]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def _known_sections(items: list[dict]) -> list[str]:
    """Known deviations of the framework (docs/findings.md), and those that did not happen."""
    lines = []
    for status, title in (("known-deviation", "Known deviations of the framework"),
                          ("no-longer-deviates", "No longer deviates: a known deviation did not happen")):
        found = [entry for entry in items if entry["status"] == status]
        if found:
            lines += ["", f"### {title} ({len(found)})", ""]
            lines += [f"- {SYMBOLS[status]} `{entry['id']}`: {_inline(entry['reason'] or '')}" for entry in found]
    return lines


def _power_sections(items: list[dict]) -> list[str]:
    """Items checked with reduced power, and the conventions passing items were judged under."""
    lines = []
    for key, title in (("limited", "Checked with reduced power"), ("conventions", "Passed under conventions")):
        groups: dict[str, list[str]] = {}
        for entry in items:
            if entry[key] and (key == "limited" or entry["status"] == "passed"):
                groups.setdefault(describe_value(entry[key]), []).append(entry["id"])
        if groups:
            lines += ["", f"### {title}", ""]
            lines += [f"- {_inline(text)}: {count(len(ids), 'item')} (" + ", ".join(f"`{i}`" for i in ids[:5])
                      + (f" and {len(ids) - 5} more" if len(ids) > 5 else "") + ")" for text, ids in groups.items()]
    return lines


def _tables(document: dict) -> list[str]:
    """One table per family: its clauses (rows) by its layers (columns)."""
    order = list(document["dtypes"]["by_layer"])
    families: dict[str, list[dict]] = {}
    for clause in document["clauses"]:
        families.setdefault(clause["family"], []).append(clause)
    lines = []
    for family, clauses in families.items():
        cells_by_clause = []
        for clause in clauses:
            by_layer: dict[str, list[tuple[str, str]]] = {}
            for key, status in clause["items"].items():
                layer, dtype = key.split(":", 1)
                by_layer.setdefault(layer, []).append((dtype, status))
            cells_by_clause.append(by_layer)
        layers = [layer for layer in order if any(layer in cells for cells in cells_by_clause)]
        if len(families) > 1:
            lines += [f"#### {family}", ""]
        lines += ["| clause | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
        for clause, cells in zip(clauses, cells_by_clause):
            lines.append(f"| `{clause['id']}` | " + " | ".join(_cell(cells.get(layer, [])) for layer in layers) + " |")
        lines.append("")
    return lines[:-1]


def _cell(found: list[tuple[str, str]]) -> str:
    """One symbol when every dtype agrees, else each dtype with its symbol."""
    if not found:
        return ""
    if len({status for _, status in found}) == 1:
        return SYMBOLS[found[0][1]]
    return " ".join(f"{SHORT_DTYPES.get(dtype, dtype)}{SYMBOLS[status]}" for dtype, status in found)


def _inline(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")
