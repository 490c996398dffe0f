"""Expected failures and skips: the files behind --xfails-file and --skips-file.

One rule per line; blank lines and lines starting with ``#`` are ignored::

    <id-pattern> [backend=PATTERN] [layer=PATTERN] [dtype=PATTERN]  # reason

The id pattern is matched against the clause id, or, when it contains a colon,
against the whole item id ``clause-id:layer:dtype`` (the pytest parameter id, as
the reports print it). Every pattern may use shell-style wildcards (``*``, ``?``,
``[...]``); matching is case-sensitive. ``backend=`` matches the ``--backend``
argument or the backend's ``name``. The reason is required: a gate that accepts a
failure should say why.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

QUALIFIERS = ("backend", "layer", "dtype")
LINE_FORMAT = "clause-id [backend=NAME] [layer=NAME] [dtype=NAME]  # reason"


class ExpectationError(ValueError):
    """An expectations file could not be read or has a malformed line."""


class UnmatchedExpectationWarning(UserWarning):
    """A rule in an expectations file matches no conformance item."""


@dataclass(frozen=True)
class Rule:
    path: str
    line: int
    pattern: str
    reason: str
    qualifiers: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def applies_to_backend(self, backend_names: tuple[str, ...]) -> bool:
        wanted = self.qualifiers.get("backend")
        return wanted is None or any(fnmatch.fnmatchcase(name, wanted) for name in backend_names)

    def matches(self, item_id: str, clause_id: str, layer: str, dtype: str) -> bool:
        target = item_id if ":" in self.pattern else clause_id
        if not fnmatch.fnmatchcase(target, self.pattern):
            return False
        for name, value in (("layer", layer), ("dtype", dtype)):
            wanted = self.qualifiers.get(name)
            if wanted is not None and not fnmatch.fnmatchcase(value, wanted):
                return False
        return True


def load_rules(path: str | Path, kind: str) -> list[Rule]:
    """Parse one expectations file. ``kind`` ("xfails" or "skips") names the file in
    errors. Raises ExpectationError naming the file, the line and what was expected."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ExpectationError(f"cannot read {kind} file {str(path)!r}: {reason}") from None
    return [rule for number, raw in enumerate(text.splitlines(), start=1)
            if (rule := _parse_line(str(path), number, raw, kind)) is not None]


def _parse_line(path: str, number: int, raw: str, kind: str) -> Rule | None:
    body, hash_sign, comment = raw.partition("#")
    tokens = body.split()
    if not tokens:
        return None

    def malformed(problem: str) -> ExpectationError:
        return ExpectationError(f"{kind} file {path}:{number}: {problem}; expected a line of the form "
                                f"'{LINE_FORMAT}', got {raw.strip()!r}")

    pattern, qualifiers = tokens[0], {}
    if "=" in pattern:
        raise malformed("the line must start with a clause id")
    if pattern.count(":") not in (0, 2):
        raise malformed(f"an item id has the form clause-id:layer:dtype, got {pattern!r}")
    for token in tokens[1:]:
        name, equals, value = token.partition("=")
        if not equals:
            raise malformed(f"unexpected {token!r} (a reason goes after '#')")
        if name not in QUALIFIERS:
            raise malformed(f"unknown qualifier {name!r}, allowed are {', '.join(QUALIFIERS)}")
        if not value:
            raise malformed(f"empty value for {name}=")
        if name in qualifiers:
            raise malformed(f"{name}= given twice")
        qualifiers[name] = value
    reason = comment.strip()
    if not hash_sign or not reason:
        raise malformed("missing reason after '#'")
    return Rule(path, number, pattern, reason, qualifiers)


def unmatched(rules: list[Rule], items, backend_names: tuple[str, ...]) -> list[Rule]:
    """Rules meant for this backend that match none of ``items`` (the full item set,
    not a -k selection). Rules for another backend are not reported: one file may
    serve several backends."""
    return [rule for rule in rules if rule.applies_to_backend(backend_names)
            and not any(rule.matches(item.id, item.clause.id, item.layer, item.dtype) for item in items)]


def first_match(rules: list[Rule], item, backend_names: tuple[str, ...]) -> Rule | None:
    for rule in rules:
        if rule.applies_to_backend(backend_names) and rule.matches(item.id, item.clause.id, item.layer, item.dtype):
            return rule
    return None
