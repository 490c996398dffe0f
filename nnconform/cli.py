"""The ``nnconform`` command: run the installed conformance suite with pytest.

    nnconform --backend mypkg.layers:Backend [any pytest arguments...]
    nnconform matrix [--backends LIST] [...]   # every backend, as one table (nnconform.matrix)

It runs pytest on the suite's test file inside the installed package, with the
nnconform plugin, and forwards every argument. It is isolated from the directory
it is started in: ``-c os.devnull`` keeps the project's pytest configuration
(pytest.ini, pyproject.toml, setup.cfg, tox.ini) out, ``--rootdir`` and
``--confcutdir`` point at the suite so no conftest.py from the project is loaded,
and the cache provider is off because site-packages may be read-only. Paths in
the arguments (reports, xfails files) are relative to the current directory, a
backend module in the current directory is importable (as under ``python -m
pytest``), failures print ``reproduce with: nnconform ...``, and
``PYTEST_ADDOPTS`` still applies.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

SUITE_PACKAGE = "nnconform.suite"
SUITE_FILE = "test_conformance.py"


def suite_file() -> Path:
    """The conformance test file: nnconform/suite/ when installed, tests/ in a checkout."""
    spec = importlib.util.find_spec(SUITE_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / SUITE_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the conformance suite ({SUITE_PACKAGE}/{SUITE_FILE}) is not installed; "
                            "reinstall nnconform")


def pytest_arguments(arguments: list[str]) -> list[str]:
    suite = suite_file()
    return ["-p", "nnconform.plugin", "-p", "no:cacheprovider", "-c", os.devnull,
            "--rootdir", str(suite.parent), "--confcutdir", str(suite.parent), "--nnconform-command=nnconform",
            str(suite), *arguments]


def import_from_cwd() -> None:
    """Let ``--backend mymodule:Backend`` find a module in the current directory, as
    ``python -m pytest`` does: the directory goes first on sys.path, and on
    PYTHONPATH for the xdist workers this process starts."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    paths = os.environ.get("PYTHONPATH", "")
    if cwd not in paths.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [cwd, paths]))


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["matrix"]:  # a subcommand; every other first argument goes to pytest
        from nnconform.matrix.command import main as matrix_main
        return matrix_main(arguments[1:])
    try:
        pytest_args = pytest_arguments(arguments)
    except FileNotFoundError as error:
        print(f"nnconform: {error}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    import_from_cwd()
    return int(pytest.main(pytest_args))


if __name__ == "__main__":
    raise SystemExit(main())
