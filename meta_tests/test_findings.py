"""docs/findings.md and the known-deviations files that link it.

Every reproduction in the findings is extracted and run, so that none can rot: a
reproduction that stops demonstrating its deviation fails here (one whose
framework is not installed is skipped, naming it). Every line of every
nnconform/known/*.txt must parse, link an existing entry and match items of the
suite."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from nnconform import known
from nnconform.expectations import KNOWN_KIND, load_rules
from nnconform.items import all_items
from nnconform.spec import load_specs

REPO = Path(__file__).resolve().parents[1]
FINDINGS = REPO / "docs" / "findings.md"
KNOWN_FILES = sorted((REPO / "nnconform" / "known").glob("*.txt"))
_ANCHOR = re.compile(r'^<a id="([A-Za-z0-9_-]+)"></a>\s*$', re.MULTILINE)
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
SECTIONS = ("**Spec.**", "**Implementation.**", "**Bug or deliberate.**", "**Versions.**")


def entries() -> dict[str, str]:
    """Each finding's text, by its anchor."""
    text = FINDINGS.read_text(encoding="utf-8")
    marks = list(_ANCHOR.finditer(text))
    return {mark.group(1): text[mark.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
            for i, mark in enumerate(marks)}


ENTRIES = entries()


def imported_modules(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_findings_has_entries_and_each_states_what_an_entry_must():
    assert ENTRIES, f"{FINDINGS} has no entry (an entry starts with <a id=\"anchor\"></a>)"
    for anchor, text in ENTRIES.items():
        missing = [section for section in SECTIONS if section not in text]
        assert not missing, f"findings entry #{anchor} lacks {missing}"
        blocks = _BLOCK.findall(text)
        assert len(blocks) == 1, f"findings entry #{anchor} needs exactly one ```python reproduction, has {len(blocks)}"
        body = ast.parse(blocks[0]).body
        assert body and isinstance(body[-1], ast.Assert), f"#{anchor}: the reproduction must end with an assert"
        outside = imported_modules(blocks[0]) - set(sys.stdlib_module_names)
        assert len(outside) == 1, f"#{anchor}: a reproduction uses one framework only, imports {sorted(outside)}"


@pytest.mark.parametrize("anchor", sorted(ENTRIES))
def test_reproduction_still_shows_the_deviation(anchor):
    (source,) = _BLOCK.findall(ENTRIES[anchor])
    missing = sorted(name for name in imported_modules(source) if importlib.util.find_spec(name) is None)
    if missing:
        pytest.skip(f"findings #{anchor} needs {', '.join(missing)}, which is not installed")
    exec(compile(source, f"{FINDINGS}#{anchor}", "exec"), {"__name__": f"finding_{anchor.replace('-', '_')}"})


def test_there_is_a_known_deviations_file_for_every_built_in_backend():
    from nnconform.backends import BUILTIN
    assert set(known.FILES) <= set(BUILTIN)
    assert {known.known_file(name).name for name in BUILTIN} == {path.name for path in KNOWN_FILES}
    assert all(known.known_file(name).is_file() for name in BUILTIN)


@pytest.mark.parametrize("path", KNOWN_FILES, ids=lambda path: path.name)
def test_every_known_deviation_links_an_entry_and_matches_items(path):
    rules = load_rules(path, KNOWN_KIND)
    items = all_items(load_specs())
    for rule in rules:
        assert rule.finding in ENTRIES, (f"{rule.where}: links docs/findings.md#{rule.finding}, "
                                         f"but findings.md has no such entry (entries: {sorted(ENTRIES)})")
        matched = [item for item in items if rule.matches(item.id, item.clause.id, item.layer, item.dtype)]
        assert matched, f"{rule.where}: {rule.pattern!r} with {rule.qualifiers} matches no item of the suite"
