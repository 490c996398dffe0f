"""What one conformance run is: its specs, settings, seed, backend, expectations and
known deviations, and how the reports describe it. One per pytest process, kept
in the config's stash by the plugin."""

from __future__ import annotations

import os

import pytest

import nnconform
from nnconform import profiles
from nnconform.backend_api import BackendError
from nnconform.backends import BUILTIN, load_backend
from nnconform.expectations import ExpectationError
from nnconform.hangs import HangRegistry
from nnconform.items import decision_alpha
from nnconform.known import builtin_name, load_known
from nnconform.report import platform_info


class RunState:
    def __init__(self, config, specs, profile, max_examples, *, profile_source, clause_timeout, xfails, skips):
        self.config, self.specs, self.profile, self.max_examples = config, specs, profile, max_examples
        self.profile_source, self.clause_timeout = profile_source, clause_timeout
        self.xfails, self.skips = xfails, skips
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
        self._known = None
        # Hangs are shared with the controller's xdist workers: they get its directory.
        shared = worker.get("nnconform_hangs")
        self.hangs = HangRegistry(shared) if shared else HangRegistry.new()
        self.owns_hangs = shared is None

    @property
    def backend(self):
        if self._backend is None:
            try:
                self._backend = load_backend(self.backend_spec)
            except BackendError as error:
                raise pytest.UsageError(str(error)) from None
            if callable(getattr(self._backend, "use_specs", None)):
                self._backend.use_specs(self.specs)  # a backend built from the specs (reference)
        return self._backend

    @property
    def strict_conventions(self) -> bool:
        return self.config.getoption("conventions") == "torch"

    def backend_names(self) -> tuple[str, ...]:
        """What a backend= qualifier may match: the --backend argument and the name."""
        return (self.backend_spec, str(getattr(self.backend, "name", self.backend_spec)))

    def backend_version(self) -> str | None:
        return str(getattr(self.backend, "version", "") or "") or None

    def known(self) -> tuple:
        """(path, rules) of the built-in backend's known deviations; (None, []) when
        --no-known-deviations is given or the backend is not a built-in one."""
        if self._known is None:
            if self.config.getoption("no_known_deviations"):
                self._known = (None, [])
            else:
                try:
                    spec = self.backend_spec
                    self._known = load_known(builtin_name(spec, None if spec in BUILTIN else self.backend))
                except ExpectationError as error:
                    raise pytest.UsageError(f"nnconform's own {error}") from None
        return self._known

    def runner(self):
        """The item runner (imported here: it pulls in the checks and scipy, which an
        xdist controller, which runs no item, never needs)."""
        from nnconform.runner import Runner
        config = self.config
        options = [f"--spec-dir={config.getoption('spec_dir')}"] if config.getoption("spec_dir") else []
        if self.strict_conventions:
            options.append("--conventions=torch")
        if config.getoption("no_known_deviations"):
            options.append("--no-known-deviations")
        return Runner(self.backend, self.backend_spec, self.base_seed, self.max_examples,
                      decision_alpha(self.specs, self.max_examples), self.strict_conventions,
                      command=config.getoption("nnconform_command"), options=tuple(options))

    def describe(self) -> dict:
        """Suite, backend, platform and run settings for the reports."""
        backend, config = self.backend, self.config
        capabilities = backend.capabilities
        workers = config.getoption("numprocesses", None) if config.getoption("dist", "no") != "no" else None
        return {
            "suite": {"name": "nnconform", "version": nnconform.__version__,
                      "spec_files": [os.path.basename(path) for path in self.specs.files],
                      "false_alarm_budget": self.specs.false_alarm_budget,
                      "decision_alpha": decision_alpha(self.specs, self.max_examples)},
            "backend": {"spec": self.backend_spec, "name": str(getattr(backend, "name", self.backend_spec)),
                        "version": str(getattr(backend, "version", "")) or None,
                        "device": capabilities.device, "layers": sorted(capabilities.layers),
                        "dtypes": sorted(capabilities.dtypes),
                        "layer_dtypes": {layer: sorted(dtypes) for layer, dtypes in
                                         sorted(getattr(capabilities, "layer_dtypes", {}).items())},
                        "autograd": capabilities.autograd,
                        "value_pools": {name: int(count) for name, count in
                                        sorted(getattr(capabilities, "value_pools", {}).items())},
                        "unavailable": getattr(backend, "unavailable", None) or None},
            "platform": platform_info(),
            "run": {"profile": self.profile, "profile_source": self.profile_source, "seed": self.base_seed,
                    "max_examples": self.max_examples, "clause_timeout": self.clause_timeout,
                    "workers": workers, "xfails_file": config.getoption("xfails_file"),
                    "skips_file": config.getoption("skips_file"),
                    "strict_xfails": config.getoption("strict_xfails"),
                    "known_deviations": str(self.known()[0]) if self.known()[0] else None,
                    "allow_nothing_checked": config.getoption("allow_nothing_checked"),
                    "arguments": list(config.invocation_params.args)},
        }
