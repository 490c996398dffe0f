"""The worked example of docs/backend-api.md passes the whole suite, and its broken
variant fails with messages that say which clause, what was expected and what came
out. Both run the real command a user runs, so the docs cannot rot."""

import re
import subprocess
import sys
from pathlib import Path

from nnconform.items import all_items
from nnconform.spec import load_specs

ROOT = Path(__file__).resolve().parents[1]


def run_suite(backend: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:xdist",
         "--backend", backend, "--conformance-profile", "ci", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600)


def summary_of(stdout: str) -> str:
    return stdout[stdout.index("nnconform conformance summary"):]


def test_numpy_example_passes_every_clause_of_its_families():
    """The example implements the dropout and batch-norm families (it stays a page long):
    every item of those passes; the other families are its declared unsupported layers."""
    result = run_suite("examples.numpy_backend:NumpyBackend", "--max-examples", "4", "-m", "dropout or batchnorm")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    summary = summary_of(result.stdout)
    own = [item for item in all_items(load_specs()) if item.clause.family in ("dropout", "batchnorm")]
    # every item of its families ran and passed: nothing unsupported (it declares autograd), nothing skipped
    assert re.search(rf"^{len(own)} passed$", summary, re.MULTILINE), summary


def test_broken_example_fails_with_readable_messages():
    result = run_suite("examples.broken_numpy_backend:BrokenNumpyBackend", "--max-examples", "4",
                       "-k", "dropout.train.survivor-scale:Dropout:float32 or batchnorm.train.output:BatchNorm2d:float64")
    assert result.returncode == 1, result.stdout[-5000:]
    summary = summary_of(result.stdout)
    assert "2 failed" in summary, summary
    # the unscaled dropout: clause id, the expected scale and the observed one
    assert re.search(r"FAILED dropout\.train\.survivor-scale:Dropout:float32: \[dropout\.train\.survivor-scale\] "
                     r"kept units are not x \* 1/\(1-p\) = x \* [\d.]+ .*observed scale 1 ", summary), summary
    # the unbiased-variance batch norm: clause id, got vs expected, the bound it broke
    assert re.search(r"FAILED batchnorm\.train\.output:BatchNorm2d:float64: \[batchnorm\.train\.output\] output after "
                     r"train call 1 differs from the float64 reference .*got [-\d.e]+, expected [-\d.e]+, "
                     r"\|error\| [\d.e-]+ > allowed", summary), summary
    # and how to reproduce each failure
    assert "reproduce with: pytest --backend examples.broken_numpy_backend:BrokenNumpyBackend" in result.stdout


def test_the_docs_show_the_example_as_it_is():
    docs = (ROOT / "docs" / "backend-api.md").read_text()
    code = (ROOT / "examples" / "numpy_backend.py").read_text()
    assert f"```python\n{code}```" in docs, "docs/backend-api.md's listing differs from examples/numpy_backend.py"
