"""Install nnconform from the working tree into a fresh virtual environment (not
editable) and run the ``nnconform`` command from an unrelated project directory,
the way a downstream CI job does.

Takes about a minute; it is marked ``install`` so a quick local run can leave it
out with ``-m "not install"``. CI runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

from meta_tests.adapter_sources import eval_scaling_backend

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[1]
NOT_SHIPPED = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__",
                                     ".hypothesis", ".pytest_cache", "reports")

DOWNSTREAM_BACKEND = eval_scaling_backend("mypkg", doc="A downstream project's backend: the reference, except that eval-mode dropout is broken.")


def run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def install(root: Path) -> Path:
    """A virtual environment holding a regular (non-editable) install of a copy of
    the working tree; torch is not installed, since the reference backend needs none."""
    root.mkdir()
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SHIPPED)
    environment = root / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "-c", str(REPO / "ci" / "constraints.txt"), str(source)],
        cwd=root, timeout=600)
    return environment


def clean_environment(**extra: str) -> dict:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "CI")}
    environment.update(extra)
    return environment


def check_installed_files(installed: Path) -> None:
    """Specs, reference and suite come from the installed package, not a checkout."""
    python = installed / "bin" / "python"
    probe = run([str(python), "-c", textwrap.dedent("""\
        import importlib.util, json, pathlib
        import nnconform, nnconform.reference
        from nnconform.spec import default_spec_dir, load_specs
        from nnconform.cli import suite_file
        print(json.dumps({"package": nnconform.__file__, "specs": str(default_spec_dir()),
                          "clauses": len(load_specs().clauses), "reference": nnconform.reference.__file__,
                          "suite": str(suite_file()), "torch": importlib.util.find_spec("torch") is not None}))
        """)], cwd=installed, env=clean_environment())
    found = json.loads(probe.stdout)
    site = str(installed)
    assert all(found[key].startswith(site) for key in ("package", "specs", "reference", "suite")), found
    assert found["specs"].endswith("nnconform/specs") and found["suite"].endswith("nnconform/suite/test_conformance.py")
    assert found["clauses"] > 0 and found["torch"] is False


def test_installed_nnconform_command_runs_from_a_project_directory(tmp_path):
    """One test, so that the install happens once even under xdist. The project has
    its own pytest configuration and a conftest.py that would break any run that
    loaded them: the command must not."""
    installed = install(tmp_path / "install")
    check_installed_files(installed)
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "mypkg" / "__init__.py").write_text("")
    (project / "mypkg" / "layers.py").write_text(DOWNSTREAM_BACKEND)
    (project / "pytest.ini").write_text("[pytest]\naddopts = --an-option-nnconform-must-not-see\n")
    (project / "conftest.py").write_text("raise RuntimeError('the project conftest must not be loaded')\n")
    (project / "conformance-xfails.txt").write_text(
        "dropout.eval.identity  backend=mypkg  # eval-mode dropout scales its input (mypkg#12)\n")
    command = [str(installed / "bin" / "nnconform"), "--backend", "mypkg.layers:Backend", "-n", "2",
               "--seed", "1", "--max-examples", "3", "-k", "dropout.eval.identity:Dropout: or dropout.edge.p-zero:Dropout:",
               "--xfails-file", "conformance-xfails.txt",
               "--conformance-json", "reports/conformance.json", "--conformance-md", "reports/conformance.md"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300,
                            env=clean_environment(PYTHONPATH=str(project)))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((project / "reports" / "conformance.json").read_text())
    found = {item["id"]: item["status"] for item in report["items"]}
    dtypes = ("float16", "bfloat16", "float32", "float64")
    assert found == {**{f"dropout.eval.identity:Dropout:{d}": "xfailed" for d in dtypes},
                     **{f"dropout.edge.p-zero:Dropout:{d}": "passed" for d in dtypes}}
    assert report["backend"]["name"] == "mypkg" and report["run"]["workers"] == 2 and report["passed"] is True
    markdown = (project / "reports" / "conformance.md").read_text()
    assert markdown.startswith("## nnconform conformance: ✅ passed") and "| 🟡 xfailed | 4 |" in markdown
    assert "4 passed, 4 xfailed" in result.stdout
