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
    lines += ["", "### Clauses by layer", ""] + _table(document)
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


def _table(document: dict) -> list[str]:
    layers = list(document["dtypes"]["by_layer"])
    header = ["| clause | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
    rows = []
    for clause in document["clauses"]:
        cells = []
        for layer in layers:
            found = [(key.split(":", 1)[1], status) for key, status in clause["items"].items()
                     if key.split(":", 1)[0] == layer]
            if not found:
                cells.append("")
            elif len({status for _, status in found}) == 1:
                cells.append(SYMBOLS[found[0][1]])
            else:
                cells.append(" ".join(f"{SHORT_DTYPES.get(dtype, dtype)}{SYMBOLS[status]}" for dtype, status in found))
        rows.append(f"| `{clause['id']}` | " + " | ".join(cells) + " |")
    return header + rows


def _inline(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")
