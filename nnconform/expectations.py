"""Expected failures and skips: the files behind --xfails-file and --skips-file, and
the known-deviations files shipped in nnconform/known/.

One rule per line; blank lines and lines starting with ``#`` are ignored::

    <id-pattern> [backend=PATTERN] [layer=PATTERN] [dtype=PATTERN] [version=SPEC]  # reason

The id pattern is matched against the clause id, or, when it contains a colon,
against the whole item id ``clause-id:layer:dtype`` (the pytest parameter id, as
the reports print it). Every pattern may use shell-style wildcards (``*``, ``?``,
``[...]``); matching is case-sensitive. ``backend=`` matches the ``--backend``
argument or the backend's ``name``. ``version=`` is a PEP 440 specifier
(``>=2.1,<2.5``) checked against the backend's ``version``; a backend that states
no version matches no such rule. The reason is required: a gate that accepts a
failure should say why.

A known-deviations file may also give ``match=REGEX``, searched in the failure's
text (a failure that does not match is not the known deviation and fails as
usual), and its reason must link the finding: ``# reason — docs/findings.md#anchor``.
"""

from __future__ import annotations

import functools

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

QUALIFIERS = ("backend", "layer", "dtype", "version")
KNOWN_KIND = "known deviations"
KNOWN_QUALIFIERS = (*QUALIFIERS, "match")
FINDING_LINK = re.compile(r"docs/findings\.md#([A-Za-z0-9_-]+)")
LINE_FORMAT = "clause-id [backend=NAME] [layer=NAME] [dtype=NAME] [version=SPEC]  # reason"


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

    @property
    def finding(self) -> str | None:
        """The docs/findings.md anchor the reason links, if any."""
        found = FINDING_LINK.search(self.reason)
        return found.group(1) if found else None

    def applies_to_backend(self, backend_names: tuple[str, ...], version: str | None = None) -> bool:
        wanted = self.qualifiers.get("backend")
        if wanted is not None and not any(fnmatch.fnmatchcase(name, wanted) for name in backend_names):
            return False
        return "version" not in self.qualifiers or version_matches(self.qualifiers["version"], version)

    def matches(self, item_id: str, clause_id: str, layer: str, dtype: str) -> bool:
        target = item_id if ":" in self.pattern else clause_id
        if not fnmatch.fnmatchcase(target, self.pattern):
            return False
        for name, value in (("layer", layer), ("dtype", dtype)):
            wanted = self.qualifiers.get(name)
            if wanted is not None and not fnmatch.fnmatchcase(value, wanted):
                return False
        return True

    def matches_failure(self, text: str) -> bool:
        """Whether a failure's text is this rule's failure (always, without match=)."""
        pattern = self.qualifiers.get("match")
        return pattern is None or re.search(pattern, text) is not None


@functools.lru_cache(maxsize=None)
def version_matches(specifier: str, version: str | None) -> bool:
    """PEP 440: does the backend's version satisfy the specifier? Pre-releases and
    local versions (2.13.0+cpu) count as their release; no or an unparsable version
    satisfies nothing."""
    if not version:
        return False
    try:
        return SpecifierSet(specifier).contains(Version(str(version)), prereleases=True)
    except InvalidVersion:
        return False


def load_rules(path: str | Path, kind: str) -> list[Rule]:
    """Parse one expectations file. ``kind`` ("xfails", "skips" or KNOWN_KIND) names
    the file in errors. Raises ExpectationError naming the file, the line and what was
    expected."""
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
    known = kind == KNOWN_KIND
    allowed = KNOWN_QUALIFIERS if known else QUALIFIERS
    line_format = LINE_FORMAT.replace("  #", " [match=REGEX]  #") + " — docs/findings.md#anchor" if known else LINE_FORMAT

    def malformed(problem: str) -> ExpectationError:
        return ExpectationError(f"{kind} file {path}:{number}: {problem}; expected a line of the form "
                                f"'{line_format}', got {raw.strip()!r}")

    pattern, qualifiers = tokens[0], {}
    if "=" in pattern:
        raise malformed("the line must start with a clause id")
    if pattern.count(":") not in (0, 2):
        raise malformed(f"an item id has the form clause-id:layer:dtype, got {pattern!r}")
    for token in tokens[1:]:
        name, equals, value = token.partition("=")
        if not equals:
            raise malformed(f"unexpected {token!r} (a reason goes after '#')")
        if name not in allowed:
            raise malformed(f"unknown qualifier {name!r}, allowed are {', '.join(allowed)}")
        if not value:
            raise malformed(f"empty value for {name}=")
        if name in qualifiers:
            raise malformed(f"{name}= given twice")
        if problem := _value_problem(name, value):
            raise malformed(problem)
        qualifiers[name] = value
    reason = comment.strip()
    if not hash_sign or not reason:
        raise malformed("missing reason after '#'")
    if known and not FINDING_LINK.search(reason):
        raise malformed("the reason must link the finding's entry, as 'docs/findings.md#anchor'")
    return Rule(path, number, pattern, reason, qualifiers)


def _value_problem(name: str, value: str) -> str | None:
    if name == "version":
        try:
            SpecifierSet(value)
        except InvalidSpecifier:
            return f"version={value!r} is not a PEP 440 version specifier (such as version=>=2.1,<2.5)"
    if name == "match":
        try:
            re.compile(value)
        except re.error as error:
            return f"match={value!r} is not a regular expression ({error})"
    return None


def unmatched(rules: list[Rule], items, backend_names: tuple[str, ...], version: str | None = None) -> list[Rule]:
    """Rules meant for this backend that match none of ``items`` (the full item set,
    not a -k selection). Rules for another backend or version are not reported: one
    file may serve several backends."""
    return [rule for rule in rules if rule.applies_to_backend(backend_names, version)
            and not any(rule.matches(item.id, item.clause.id, item.layer, item.dtype) for item in items)]


def all_matches(rules: list[Rule], item, backend_names: tuple[str, ...], version: str | None = None) -> list[Rule]:
    """Every rule that applies to the backend and names the item, in file order."""
    return [rule for rule in rules if rule.applies_to_backend(backend_names, version)
            and rule.matches(item.id, item.clause.id, item.layer, item.dtype)]


def first_match(rules: list[Rule], item, backend_names: tuple[str, ...], version: str | None = None) -> Rule | None:
    found = all_matches(rules, item, backend_names, version)
    return found[0] if found else None
