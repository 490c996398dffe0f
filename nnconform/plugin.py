"""The pytest plugin: options, validation before any test, one item per clause,
layer and dtype, and the conformance summary.

Specs and the backend are loaded once in pytest_configure, so a bad spec file or
an unknown backend stops the run before any test with a message that names it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from nnconform import profiles
from nnconform.backend_api import BackendError
from nnconform.backends import load_backend
from nnconform.items import all_items, decision_alpha
from nnconform.runner import Runner
from nnconform.spec import SpecError, load_specs
from nnconform.summary import ConformanceSummary

UNSUPPORTED = "not supported by backend"
ITEM_FIXTURE = "conformance_item"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(f"--max-examples expects a positive integer, got {text!r}") from None
    if value < 1:
        raise pytest.UsageError(f"--max-examples expects a positive integer, got {value}")
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
                    help="Hypothesis settings profile: dev (default), ci (fixed seed) or thorough")
    group.addoption("--spec-dir", default=None, help="directory of spec files (default: the suite's specs/)")


def pytest_configure(config):
    try:
        specs = load_specs(config.getoption("spec_dir"))
    except SpecError as error:
        raise pytest.UsageError(f"invalid spec: {error}") from None
    for family in sorted({c.family for c in specs.clauses}):
        config.addinivalue_line("markers", f"{family}: clauses of the {family} family")
    profile = config.getoption("conformance_profile") or profiles.DEFAULT_PROFILE
    settings.load_profile(profile)
    raw_examples = config.getoption("max_examples")
    max_examples = _positive_int(raw_examples) if raw_examples is not None else settings.default.max_examples
    config.stash[_STATE] = _State(config, specs, profile, max_examples)
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ConformanceSummary(config), "nnconform-summary")


def pytest_configure_node(node):
    """xdist: every worker uses the controller's base seed."""
    node.workerinput["nnconform_seed"] = node.config.stash[_STATE].base_seed


class _State:
    def __init__(self, config, specs, profile, max_examples):
        self.config, self.specs, self.profile, self.max_examples = config, specs, profile, max_examples
        explicit = config.getoption("seed")
        worker = getattr(config, "workerinput", {})
        if explicit is not None:
            self.base_seed = explicit
        elif "nnconform_seed" in worker:
            self.base_seed = worker["nnconform_seed"]
        elif profile == "ci":
            self.base_seed = profiles.CI_SEED
        else:
            self.base_seed = int.from_bytes(os.urandom(4), "little")
        self.backend_spec = config.getoption("backend")
        self._backend = None

    @property
    def backend(self):
        if self._backend is None:
            try:
                self._backend = load_backend(self.backend_spec)
            except BackendError as error:
                raise pytest.UsageError(str(error)) from None
        return self._backend

    def runner(self) -> Runner:
        return Runner(self.backend, self.backend_spec, self.base_seed, self.max_examples,
                      decision_alpha(self.specs, self.max_examples))


_STATE = pytest.StashKey[_State]()


def state(config) -> _State:
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
            reason = backend.capabilities.unsupported_reason(item.layer, item.dtype, item.needs_autograd)
            if reason:
                marks.append(pytest.mark.skip(reason=f"{UNSUPPORTED}: {reason}"))
        params.append(pytest.param(item, id=item.id, marks=marks))
    metafunc.parametrize(ITEM_FIXTURE, params)


@pytest.fixture(scope="session")
def conformance_runner(request) -> Runner:
    return state(request.config).runner()


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
    return (f"nnconform: backend {st.backend_spec}, profile {st.profile}, max examples {st.max_examples}, "
            f"seed {st.base_seed} (repeat with --seed {st.base_seed})")
