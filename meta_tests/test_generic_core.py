"""The generic core knows no family: the checks and the strategies read what a family
needs from its spec, so no layer or family name (nor its spelling as words, "batch
norm") appears in their source, comments included."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnconform.spec import load_specs

ROOT = Path(__file__).resolve().parents[1]
GENERIC = sorted((ROOT / "nnconform" / "checks").glob("*.py")) + [ROOT / "nnconform" / "strategies.py"]


def _names() -> set[str]:
    specs = load_specs()
    names = {clause.family for clause in specs.clauses} | {layer for clause in specs.clauses for layer in clause.layers}
    words = set()
    for name in names:
        words.add(name.lower())
        # the family's words as prose: "channel-dropout" -> "channel dropout", "batchnorm" -> "batch norm"
        words.add(name.lower().replace("-", " "))
        words.add(re.sub(r"(norm|dropout)$", r" \1", name.lower()).strip())
    return {w for w in words if len(w) > 3}


NAMES = sorted(_names())


def test_the_names_list_is_not_empty():
    assert {"dropout", "batchnorm", "batch norm", "layernorm", "groupnorm", "instancenorm1d"} <= set(NAMES), NAMES


@pytest.mark.parametrize("path", GENERIC, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_layer_or_family_name_in_generic_code(path):
    text = path.read_text(encoding="utf-8").lower()
    found = sorted({name for name in NAMES if re.search(r"(?<![a-z_])" + re.escape(name) + r"(?![a-z])", text)})
    assert not found, f"{path.relative_to(ROOT)} names {found}: what a family needs belongs in its spec"
