"""Known deviations: where a built-in backend's framework departs from the spec,
shipped with the suite as evidence-backed expected failures.

Each built-in backend has a file here in the xfails-file format (see
nnconform.expectations), whose every line links its entry in docs/findings.md.
It is applied by default when that backend is chosen (``--no-known-deviations``
turns it off). An item it matches and that fails with the listed failure gets the
status ``known-deviation``; one that passes gets ``no-longer-deviates`` (a failure
only under ``--strict-xfails``); one that fails some other way stays a failure.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from nnconform.backends import BUILTIN
from nnconform.expectations import KNOWN_KIND, Rule, load_rules
from nnconform.hangs import ClauseTimeout

# A built-in backend NAME has its file NAME.txt here, unless it is listed below.
# torch-cuda shares torch's file: a line meant for the CPU only says backend=torch.
FILES = {"torch-cuda": "torch.txt"}
PREFIX = "known deviation"
STRICT_XPASS = "[XPASS(strict)] "  # pytest's failure text for an expected failure that passed under strict


def builtin_name(spec: str, backend) -> str | None:
    """The built-in backend chosen by --backend, by name or by its class's path."""
    if spec in BUILTIN:
        return spec
    target = f"{type(backend).__module__}:{type(backend).__qualname__}"
    return next((name for name, value in BUILTIN.items() if value == target), None)


def known_file(name: str | None) -> Path | None:
    """The known-deviations file of a built-in backend (every one ships one, perhaps
    with no line: meta_tests/test_findings.py checks); None for another backend."""
    if name not in BUILTIN and name not in FILES:
        return None
    return Path(str(resources.files(__name__) / FILES.get(name, f"{name}.txt")))


def load_known(name: str | None) -> tuple[Path | None, list[Rule]]:
    """The known-deviations file of a built-in backend and its rules (none for
    another backend). A malformed file raises ExpectationError."""
    path = known_file(name)
    return (path, load_rules(path, KNOWN_KIND)) if path is not None else (None, [])


def label(rule: Rule) -> str:
    return f"{PREFIX} {Path(rule.path).name}:{rule.line}: {rule.reason}"


def judge(report, call, rules: list[Rule], strict: bool) -> None:
    """Turn the call phase's report of an item with known deviations (every rule that
    names the item, in file order) into its status, the way pytest's xfail does: a
    failure that one of the rules' match= finds becomes an expected failure, a pass
    is reported as no longer deviating (a failure under strict), and any other
    outcome (another failure, a timeout, a skip) is left alone."""
    if call.when != "call":
        return
    rule = rules[0]
    text = label(rule)
    if call.excinfo is None:
        if strict:
            report.outcome, report.longrepr = "failed", STRICT_XPASS + text
        else:
            report.outcome, report.wasxfail = "passed", text
        return
    if call.excinfo.errisinstance((pytest.skip.Exception, KeyboardInterrupt, ClauseTimeout)):
        return
    found = next((candidate for candidate in rules if candidate.matches_failure(report.longreprtext)), None)
    if found is not None:
        report.outcome, report.wasxfail = "skipped", label(found)
    else:
        wanted = ", ".join(repr(candidate.qualifiers.get("match")) for candidate in rules)
        report.sections.append(("nnconform", f"this failure is not the {text} (no match= of the known "
                                             f"deviations listed for this item found it: {wanted})"))
