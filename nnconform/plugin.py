"""The pytest plugin: options, validation before any test, one item per clause,
layer and dtype, expected failures, skips and known deviations (nnconform.known),
per-item time limits (nnconform.timeouts), and the conformance summary and reports.

Specs, expectations files and report paths are checked in pytest_configure, and
the backend is loaded when the session starts, so a bad spec file, a malformed
xfails line, an unwritable report path or an unknown backend stops the run before
any test with a one-line message that names it.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:  # the runner imports the checks and scipy, which a controller never needs
    from nnconform.runner import Runner

import nnconform
from nnconform import profiles
from nnconform.backends import available_backends
from nnconform.cli import suite_file
from nnconform.expectations import (ExpectationError, UnmatchedExpectationWarning, all_matches, first_match, load_rules,
                                    unmatched)
from nnconform.items import all_items, unsupported_reason
from nnconform.known import judge
from nnconform.report import ReportPathError, ReportWriter, ensure_writable
from nnconform.run_state import RunState
from nnconform.spec import SpecError, load_specs
from nnconform.summary import ConformanceSummary, XdistCollection
from nnconform.timeouts import TimeLimits, mark_timeout

UNSUPPORTED = "not supported by backend"
ITEM_FIXTURE = "conformance_item"
DEFAULT_CLAUSE_TIMEOUT = 120.0
CI_TRUE = ("true", "1", "yes")
PARTIAL_REPORT_INTERVAL = 1.0  # seconds between partial reports under xdist (see ReportWriter)
_KNOWN_RULE = pytest.StashKey()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(f"--max-examples expects a positive integer, got {text!r}") from None
    if value < 1:
        raise pytest.UsageError(f"--max-examples expects a positive integer, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise pytest.UsageError(f"--clause-timeout expects a number of seconds (0 disables), got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise pytest.UsageError(f"--clause-timeout expects a number of seconds (0 disables), got {text}")
    return value


def pytest_addoption(parser):
    group = parser.getgroup("nnconform", "nnconform conformance suite")
    group.addoption("--backend", default="torch",
                    help="backend to test: torch (default), torch-cuda, reference, an installed "
                         "entry point name, or package.module:attr")
    group.addoption("--seed", type=int, default=None,
                    help="base seed for every Hypothesis draw and backend RNG; repeats a run exactly")
    group.addoption("--max-examples", default=None,
                    help="Hypothesis examples per item, overriding the profile")
    group.addoption("--conformance-profile", choices=profiles.PROFILES, default=None,
                    help="Hypothesis settings profile: dev, ci (derandomized, fixed seed) or thorough; "
                         "default ci when the environment variable CI is true, else dev")
    group.addoption("--spec-dir", default=None, help="directory of spec files (default: the suite's specs/)")
    group.addoption("--xfails-file", default=None, metavar="PATH",
                    help="expected failures, one per line: 'clause-id [backend=NAME] [layer=NAME] "
                         "[dtype=NAME]  # reason' (ids may use * wildcards)")
    group.addoption("--skips-file", default=None, metavar="PATH",
                    help="items never to run, in the xfails-file format")
    group.addoption("--strict-xfails", action="store_true", default=False,
                    help="fail the run when an expected failure passes")
    group.addoption("--conformance-json", default=None, metavar="PATH", help="write the JSON report here")
    group.addoption("--conformance-md", default=None, metavar="PATH", help="write the Markdown report here")
    group.addoption("--conventions", choices=("declared", "torch"), default="declared",
                    help="judge convention-dependent clauses under the conventions the backend declares "
                         "(default), or strictly under torch's (the spec's defaults)")
    group.addoption("--clause-timeout", default=str(DEFAULT_CLAUSE_TIMEOUT), metavar="SECONDS",
                    help=f"time limit of one item (default {DEFAULT_CLAUSE_TIMEOUT:g}); 0 disables. After an item "
                         "hangs, its layer's other items are not run and the rest get a shorter probe limit")
    group.addoption("--no-known-deviations", action="store_true", default=False,
                    help="do not apply the built-in backend's known deviations (nnconform/known/, "
                         "docs/findings.md): their items then fail as any other")
    group.addoption("--allow-nothing-checked", action="store_true", default=False,
                    help="exit 0 even when no item was checked (all unsupported, skipped or the backend "
                         "unavailable), e.g. a GPU job that may land on a machine without a GPU")
    # Set by the nnconform command, so that failures say how to repeat them with it.
    group.addoption("--nnconform-command", default="pytest", help=argparse.SUPPRESS)


def _profile(config) -> tuple[str, str]:
    """The profile and where it came from: the option, a CI environment, or the default."""
    given = config.getoption("conformance_profile")
    if given:
        return given, "--conformance-profile"
    if os.environ.get("CI", "").strip().lower() in CI_TRUE:
        return "ci", "CI environment variable"
    return profiles.DEFAULT_PROFILE, "default"


def pytest_configure(config):
    try:
        specs = load_specs(config.getoption("spec_dir"))
    except SpecError as error:
        raise pytest.UsageError(f"invalid spec: {error}") from None
    for family in sorted({c.family for c in specs.clauses}):
        config.addinivalue_line("markers", f"{family}: clauses of the {family} family")
    profile, profile_source = _profile(config)
    settings.load_profile(profile)
    raw_examples = config.getoption("max_examples")
    max_examples = _positive_int(raw_examples) if raw_examples is not None else settings.default.max_examples
    clause_timeout = _seconds(config.getoption("clause_timeout"))
    try:
        xfails, skips = _rules(config, "xfails_file", "xfails"), _rules(config, "skips_file", "skips")
    except ExpectationError as error:
        raise pytest.UsageError(str(error)) from None
    st = RunState(config, specs, profile, max_examples, profile_source=profile_source,
                  clause_timeout=clause_timeout, xfails=xfails, skips=skips)
    config.stash[_STATE] = st
    worker = getattr(config, "workerinput", None)
    config.pluginmanager.register(TimeLimits(st.hangs, _item_of, lambda item: st.runner().reproduce_command(item)),
                                  "nnconform-time-limits")
    if worker is not None:
        return
    try:
        paths = {option: ensure_writable(config.getoption(option), "--" + option.replace("_", "-"))
                 for option in ("conformance_json", "conformance_md") if config.getoption(option)}
    except ReportPathError as error:
        raise pytest.UsageError(str(error)) from None
    summary = ConformanceSummary(config)
    config.pluginmanager.register(summary, "nnconform-summary")
    config.pluginmanager.register(XdistCollection(summary), "nnconform-xdist-collection")
    if paths:
        uses_xdist = config.getoption("dist", "no") != "no" and bool(config.getoption("numprocesses", None))
        writer = ReportWriter(summary, {item.id: item for item in all_items(specs)}, st.describe,
                              paths.get("conformance_json"), paths.get("conformance_md"),
                              interval=PARTIAL_REPORT_INTERVAL if uses_xdist else 0.0)
        config.pluginmanager.register(writer, "nnconform-report")


def pytest_collection_finish(session):
    """Move everything alive after collection (torch, scipy, the specs, the items) out of
    the garbage collector's reach: every later full collection then skips those
    millions of objects instead of walking them again."""
    gc.freeze()


def pytest_unconfigure(config):
    st = config.stash.get(_STATE, None)
    if st is not None and st.owns_hangs:
        shutil.rmtree(st.hangs.directory, ignore_errors=True)
    gc.freeze()  # the same for the process's exit: no last walk over every object


def _rules(config, option: str, kind: str) -> list:
    path = config.getoption(option)
    return load_rules(path, kind) if path else []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """Controller: load the backend (an unknown one stops the run here, before xdist
    starts workers) and warn about expectation lines that match no item."""
    config = session.config
    if hasattr(config, "workerinput") or not _selects_suite(config):
        return
    st = state(config)
    if _workers_only_need_backend(config, st):
        return
    names = st.backend_names()
    items = all_items(st.specs)
    for rule in unmatched(st.xfails + st.skips, items, names, st.backend_version()):
        config.issue_config_time_warning(UnmatchedExpectationWarning(
            f"{rule.where}: {rule.pattern!r} {_qualifiers(rule)}matches no conformance item; "
            "check the id against the report (ids look like clause-id or clause-id:layer:dtype)"), stacklevel=2)


def _workers_only_need_backend(config, st) -> bool:
    """Under xdist with no report and no expectations file, the controller needs the
    backend only to validate its name: a built-in or installed name is known without
    importing it, which saves the controller a torch import (a second or two of every
    parallel run). Any other name is loaded, so that errors stay one line."""
    uses_xdist = config.getoption("dist", "no") != "no" and bool(config.getoption("numprocesses", None))
    needs_backend = st.xfails or st.skips or config.pluginmanager.has_plugin("nnconform-report")
    return uses_xdist and not needs_backend and st.backend_spec in available_backends()


def _selects_suite(config) -> bool:
    """Whether the run's paths include the conformance test file; False for a run
    of other tests (meta_tests), which then needs no backend."""
    try:
        suite = suite_file().resolve()
    except FileNotFoundError:
        return True
    for argument in config.args:
        path = config.invocation_params.dir / argument.split("::", 1)[0]
        if not path.exists():
            return True
        path = path.resolve()
        if path == suite or path in suite.parents:
            return True
    return False


def _qualifiers(rule) -> str:
    return "".join(f"{name}={value} " for name, value in rule.qualifiers.items())


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist: every worker uses the controller's base seed and its record of hangs."""
    st = node.config.stash[_STATE]
    node.workerinput["nnconform_seed"] = st.base_seed
    node.workerinput["nnconform_hangs"] = str(st.hangs.directory)


_STATE = pytest.StashKey[RunState]()


def state(config) -> RunState:
    return config.stash[_STATE]


def pytest_generate_tests(metafunc):
    if ITEM_FIXTURE not in metafunc.fixturenames:
        return
    st = state(metafunc.config)
    backend = st.backend
    unavailable = getattr(backend, "unavailable", None)
    params = []
    for item in all_items(st.specs):
        marks = [getattr(pytest.mark, item.clause.family)]
        if unavailable:
            marks.append(pytest.mark.skip(reason=f"backend {st.backend_spec!r} unavailable: {unavailable}"))
        else:
            reason = unsupported_reason(item, backend.capabilities, st.strict_conventions)
            if reason:
                marks.append(pytest.mark.skip(reason=f"{UNSUPPORTED}: {reason}"))
        params.append(pytest.param(item, id=item.id, marks=marks))
    metafunc.parametrize(ITEM_FIXTURE, params)


def _item_of(node):
    callspec = getattr(node, "callspec", None)
    return callspec.params.get(ITEM_FIXTURE) if callspec is not None else None


def pytest_collection_modifyitems(config, items):
    """Apply the skips and xfails files and the per-item time limit. A skip is a skip
    mark, so the item never runs; a backend's unsupported skip, added first, wins."""
    st = state(config)
    conformance = [(node, item) for node in items if (item := _item_of(node)) is not None]
    known = st.known()[1] if conformance else []
    names = st.backend_names() if st.xfails or st.skips or known else ()
    version = st.backend_version() if names else None
    method = "signal" if hasattr(signal, "SIGALRM") else "thread"
    for node, item in conformance:
        if st.clause_timeout > 0:
            node.add_marker(pytest.mark.timeout(st.clause_timeout, method=method, func_only=True))
        if skip := first_match(st.skips, item, names, version):
            node.add_marker(pytest.mark.skip(reason=f"skips file {skip.where}: {skip.reason}"))
            continue
        if xfail := first_match(st.xfails, item, names, version):
            node.add_marker(pytest.mark.xfail(reason=f"xfails file {xfail.where}: {xfail.reason}",
                                              strict=config.getoption("strict_xfails")))
        if deviations := all_matches(known, item, names, version):
            node.stash[_KNOWN_RULE] = deviations


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """A timed-out item's report is tagged; a known deviation's becomes its status."""
    report = yield
    mark_timeout(report, call)
    deviations = item.stash.get(_KNOWN_RULE, None)
    if deviations:
        judge(report, call, deviations, item.config.getoption("strict_xfails"))
    return report


@pytest.fixture(scope="session")
def conformance_runner(request) -> Runner:
    return state(request.config).runner()


@pytest.fixture
def conformance_expected_failure(request) -> bool:
    """Whether the item is expected to fail (an xfails line or a known deviation): its
    failing example then needs no shrinking, which on large inputs costs seconds."""
    return bool(request.node.stash.get(_KNOWN_RULE, None) or request.node.get_closest_marker("xfail"))


@pytest.fixture
def conformance_record(request, conformance_item) -> dict:
    """Evidence for the reports. Attached at setup, so the call's report carries what
    the run wrote into it, whether the clause passed or failed."""
    record = {"item": conformance_item.id, "clause": conformance_item.clause.id,
              "layer": conformance_item.layer, "dtype": conformance_item.dtype}
    request.node.user_properties.append(("nnconform", record))
    return record


def pytest_report_header(config):
    st = state(config)
    limit = f"{st.clause_timeout:g} s" if st.clause_timeout else "off"
    lines = [f"nnconform {nnconform.__version__}: backend {st.backend_spec}, profile {st.profile} "
             f"({st.profile_source}), max examples {st.max_examples}, clause timeout {limit}, "
             f"seed {st.base_seed} (repeat with --seed {st.base_seed})"]
    for kind, rules in (("xfails", st.xfails), ("skips", st.skips)):
        if rules:
            lines.append(f"nnconform: {len(rules)} {kind} rules from {config.getoption(kind + '_file')}")
    path, known = st.known()
    if known:
        lines.append(f"nnconform: {len(known)} known-deviation rules from {path} (docs/findings.md; "
                     "off with --no-known-deviations)")
    return lines
