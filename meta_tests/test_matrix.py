"""Meta tests for ``nnconform matrix``: real matrix runs on a -k subset, then the
Markdown, the run records, a re-render from the reports alone, the decision evidence
the plots draw, and the HTML page in headless Chromium (which CI must have: under
CI=true a missing browser fails the browser tests instead of skipping them).

The matrix has seven columns, one per kind of outcome: torch (a known deviation), the
reference, torch-cuda (unavailable without a GPU), a zoo backend that declares the
biased running-variance convention, a backend whose framework is not installed, one
that aborts the process and one that hangs past --backend-timeout.
"""

from __future__ import annotations

import importlib.util

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from meta_tests import browser
from nnconform.backends import BUILTIN
from nnconform.matrix.command import backend_list
from nnconform.matrix.run import describe_exit, slug, tail
from nnconform.matrix.table import build, load_columns

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
LIMIT = 60  # --backend-timeout of the hanging backend's run: it is killed after this

BACKENDS = '''
import os
import time

from nnconform.backend_api import BackendError
from nnconform.backends.reference_backend import ReferenceBackend


class NotInstalled:
    """As a built-in backend whose framework is missing: loading it raises one line."""

    def __init__(self):
        raise BackendError("backend 'matrix_backends:NotInstalled': its framework (fakeflax) is not installed; "
                           "pip install fakeflax")


class _EvalFault(ReferenceBackend):
    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        fault, forward, mode = self.fault, built.forward, {"training": True}
        train, evaluate = built.train, built.eval
        built.train = lambda: (mode.update(training=True), train())[1]
        built.eval = lambda: (mode.update(training=False), evaluate())[1]
        built.forward = lambda x: forward(x) if mode["training"] else fault()
        return built


class Aborts(_EvalFault):
    """Kills its process in an eval-mode forward call."""
    name = "aborts"

    @staticmethod
    def fault():
        os.abort()


class Hangs(_EvalFault):
    """Never returns from an eval-mode forward call."""
    name = "hangs"

    @staticmethod
    def fault():
        time.sleep(3600)
'''

CONVENTION = "meta_tests.zoo.norm_alternatives:DeclaredBiasedRunningVariance"
SPECS = ["torch", "reference", "torch-cuda", CONVENTION, "matrix_backends:NotInstalled", "matrix_backends:Aborts",
         "matrix_backends:Hangs"]
CLAUSES = ["dropout.train.drop-rate", "dropout.train.survivor-scale", "dropout.eval.identity",
           "instancenorm.train.running-update"]  # in spec order
SELECTION = ("dropout.train.survivor-scale:Dropout: or dropout.train.drop-rate:Dropout:float32 or "
             "dropout.eval.identity:Dropout:float32 or instancenorm.train.running-update:InstanceNorm1d:float32")


def matrix_command(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: float = 600):
    environment = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "nnconform.cli", "matrix", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The matrix of SPECS, in two runs into one reports directory: six backends under
    the default time limit, then the hanging one (killed after LIMIT seconds) followed
    by another, which still runs; then docs/matrix.md and .html from all seven records."""
    directory = tmp_path_factory.mktemp("matrix")
    (directory / "backends").mkdir()
    (directory / "backends" / "matrix_backends.py").write_text(textwrap.dedent(BACKENDS))
    out, reports = directory / "docs", directory / "reports"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(directory / "backends"), os.environ.get("PYTHONPATH")]))}
    common = ("--reports-dir", str(reports), "-k", SELECTION, "--seed", "1", "--max-examples", "3", "-p", "no:randomly")
    first = matrix_command("--backends", ",".join(SPECS[:-1]), "--out-md", str(out / "first.md"),
                           "--out-html", str(out / "first.html"), *common, env=env, timeout=2400)
    assert first.returncode == 0, first.stdout + first.stderr
    hang = matrix_command("--backends", "matrix_backends:Hangs,matrix_backends:NotInstalled", "--backend-timeout",
                          str(LIMIT), "--out-md", str(out / "hang.md"), "--out-html", str(out / "hang.html"), *common,
                          env=env, timeout=1200)
    assert hang.returncode == 0, hang.stdout + hang.stderr
    done = [line.split(": ", 2)[1:] for line in hang.stdout.splitlines()
            if line.startswith("nnconform matrix: matrix_backends") and not line.endswith("running ...")]
    assert [spec for spec, _ in done] == ["matrix_backends:Hangs", "matrix_backends:NotInstalled"], hang.stdout
    assert done[0][1].startswith(f"the suite run was killed after {LIMIT} s"), hang.stdout
    records = [str(reports / f"{slug(spec)}.run.json") for spec in SPECS]
    result = matrix_command("--from-reports", *records, "--out-md", str(out / "matrix.md"),
                            "--out-html", str(out / "matrix.html"))
    assert result.returncode == 0, result.stderr
    return directory, first


def table_rows(markdown: str) -> dict[str, list[str]]:
    """The matrix table by its first column: clause id (or "summary") -> its cells."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| clause"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0].strip("`*")] = cells[1:]
    return rows


def test_markdown_has_clauses_down_backends_across_and_one_symbol_per_cell(run):
    directory, _ = run
    markdown = (directory / "docs" / "matrix.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| clause"))
    assert [cell.strip(" `") for cell in header.split("|")[1:-1]][1:] == [
        "torch", "reference", "torch-cuda", f"{CONVENTION} (norm-declared-biased-running-variance)",
        "matrix_backends:NotInstalled", "matrix_backends:Aborts (aborts)", "matrix_backends:Hangs (hangs)"]
    rows = table_rows(markdown)
    assert list(rows) == ["summary", *CLAUSES]
    torch, reference, cuda, convention, missing, aborts, hangs = zip(*rows.values())

    # torch: float16 dropout's scale overflow is a known deviation, the other three dtypes conform
    assert torch[1:] == ("✅", torch[2], "✅", "✅")
    assert re.fullmatch(r"📌 1 \[torch-dropout-float16-scale-overflow\]\(\S+findings\.md#torch-dropout-float16-"
                        r"scale-overflow\) · ✅ 3", torch[2]), torch[2]
    assert re.fullmatch(r"passed 6 · known 1 · unsupported 0 · failed 0<br>\d+ s · torch \S+ \(cpu\)", torch[0]), torch[0]
    assert reference[1:] == ("✅", "✅", "✅", "✅") and reference[0].startswith("passed 7 · known 0 · "), reference[0]
    # a convention names itself; items outside the backend's layers are unsupported
    assert convention[1:] == ("🚫", "🚫", "🚫", "☑️ running_var=biased")
    # a column that could not run says why, and its cells are not run
    assert cuda[0].startswith("🚫 unavailable: no CUDA device is available to torch") and set(cuda[1:]) == {"⬜"}
    assert missing[0] == ("🚫 backend 'matrix_backends:NotInstalled': its framework (fakeflax) is not installed; "
                          "pip install fakeflax") and set(missing[1:]) == {"⬜"}
    # a crash and a hang keep what had finished before them
    assert aborts[0].startswith("💥 the suite run ended with signal SIGABRT (exit status -6); its partial report")
    assert aborts[1:] == ("✅", "✅", "⬜", "⬜"), aborts
    assert hangs[0].startswith(f"⌛ the suite run was killed after {LIMIT} s (--backend-timeout)"), hangs[0]
    assert hangs[3] == "⬜" and set(hangs[1:]) <= {"✅", "⬜"}, hangs  # how far it got depends on the machine
    assert "Legend: 💥 crashed" in markdown and "☑️ conforms under a declared convention" in markdown
    assert "Fatal Python error: Aborted" in markdown.split("### `matrix_backends:Aborts (aborts)`: crashed")[1]


def test_each_backend_ran_in_its_own_process_with_a_run_record(run):
    directory, result = run
    records = {json.loads(path.read_text())["backend"]: json.loads(path.read_text())
               for path in (directory / "reports").glob("*.run.json")}
    assert set(records) == set(SPECS)
    states = {spec: record["state"] for spec, record in records.items()}
    assert states == {"torch": "finished", "reference": "finished", "torch-cuda": "unavailable",
                      CONVENTION: "finished", "matrix_backends:NotInstalled": "cannot-load",
                      "matrix_backends:Aborts": "crashed", "matrix_backends:Hangs": "timed-out"}
    assert records["matrix_backends:Aborts"]["exit_status"] == -6
    hung = records["matrix_backends:Hangs"]
    assert hung["exit_status"] in (-15, -9) and LIMIT <= hung["seconds"] < LIMIT + 120
    assert records["torch"]["command"].startswith("nnconform --backend torch --conformance-json=")
    for spec in ("torch", "matrix_backends:Aborts"):
        jsonschema.validate(json.loads((directory / "reports" / records[spec]["report"]).read_text()), SCHEMA)
    aborted = json.loads((directory / "reports" / records["matrix_backends:Aborts"]["report"]).read_text())
    assert not aborted["run"]["complete"]
    assert {item["id"]: item["status"] for item in aborted["items"]}["dropout.eval.identity:Dropout:float32"] == "running"
    if hung["report"]:  # a partial report, when the run got as far as collecting before it was killed
        partial = json.loads((directory / "reports" / hung["report"]).read_text())
        assert not partial["run"]["complete"] and partial["run"]["exit_status"] is None
    assert "wrote" in result.stdout and "--from-reports" in result.stdout


def test_from_reports_renders_the_same_matrix_without_running(run, tmp_path):
    directory, _ = run
    records = [str(directory / "reports" / f"{slug(spec)}.run.json") for spec in SPECS[:-1]]
    out = directory / "docs"
    result = matrix_command("--from-reports", *records, "--out-md", str(out / "again.md"),
                            "--out-html", str(out / "again.html"))
    assert result.returncode == 0, result.stderr
    # the live run's own output; its wall times aside (the hang run wrote NotInstalled's record again)
    live = (out / "first.md").read_text().replace("first.html", "again.html")
    assert (out / "again.md").read_text().split("## Runs")[0] == live.split("## Runs")[0]
    # a plain conformance report is a column too
    torch = directory / "reports" / "torch.json"
    result = matrix_command("--from-reports", str(torch), "--out-md", str(tmp_path / "m.md"), "--out-html",
                            str(tmp_path / "m.html"))
    assert result.returncode == 0, result.stderr
    assert table_rows((tmp_path / "m.md").read_text())["dropout.train.drop-rate"] == ["✅"]


def test_statistical_decisions_record_interval_and_expected_value(run):
    directory, _ = run
    report = json.loads((directory / "reports" / "torch.json").read_text())
    (item,) = [item for item in report["items"] if item["id"] == "dropout.train.drop-rate:Dropout:float32"]
    assert item["statistics"]
    for decision in item["statistics"]:
        if decision["alpha"] == 0:  # an exact check at p = 0 or 1 has no interval
            assert decision["interval"] is None
            continue
        low, high = decision["interval"]
        assert decision["expected_value"] == decision["p"] and low <= decision["p"] <= high
        assert decision["passed"] and low <= decision["statistic"] <= high


def test_html_page_is_self_contained_and_embeds_every_cell(run):
    directory, _ = run
    page = (directory / "docs" / "matrix.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "<link" not in page and "@import" not in page
    data = json.loads(re.search(r'<script type="application/json" id="matrix-data">(.*?)</script>', page, re.S).group(1))
    assert [row["clause"] for row in data["rows"]] == CLAUSES and len(data["columns"]) == len(SPECS)
    assert page.count('<td class="cell') == len(SPECS) * (len(CLAUSES) + 1)
    matrix = build(load_columns(sorted((directory / "reports").glob("*.run.json"))))
    assert sum(len(cell.items) for row in matrix.rows for cell in row.cells) == sum(
        len(cell) for row in data["cells"] for cell in row)


def test_backend_list_expands_builtin_in_order_without_repeats():
    assert backend_list("builtin, mypkg.layers:Backend,torch") == [*BUILTIN, "mypkg.layers:Backend"]
    assert backend_list("reference,torch") == ["reference", "torch"]


def test_a_stderr_tail_keeps_the_headline_of_a_long_stack_dump(tmp_path):
    dump = tmp_path / "stderr.txt"
    dump.write_text("noise\nFatal Python error: Aborted\n\n" + "".join(f'  File "x.py", line {n}\n' for n in range(100)))
    text = tail(dump)
    assert text.startswith("Fatal Python error: Aborted\n...\n") and text.endswith('line 99') and "line 69\n" not in text
    assert describe_exit(-6) == "signal SIGABRT (exit status -6)" and describe_exit(4) == "exit status 4 (usage error)"


def test_matrix_rejects_arguments_it_sets_itself():
    result = matrix_command("--backend", "torch")
    assert result.returncode == 4 and "--backend is set by the matrix for each run" in result.stderr
    result = matrix_command("--from-reports", str(REPO / "README.md"))
    assert result.returncode == 4 and "is not JSON" in result.stderr


def test_readme_summary_matches_the_committed_matrix():
    spec = importlib.util.spec_from_file_location("matrix_summary", REPO / "scripts" / "matrix_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.summary_table((REPO / "docs" / "matrix.md").read_text())
    assert module.region((REPO / "README.md").read_text()) == table, (
        "README.md's matrix summary is not the one docs/matrix.md gives; "
        "regenerate it with: python scripts/matrix_summary.py --write README.md")
    assert table.count("\n| `") == len(module.summary_cells((REPO / "docs" / "matrix.md").read_text()))


# -- the page in a real browser --------------------------------------------------------

def needs_browser():
    reason = browser.missing()
    if reason:
        if CI:
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)


def test_page_renders_in_chromium_and_a_click_opens_the_cells_details(run, tmp_path):
    needs_browser()
    from selenium.webdriver.common.by import By

    directory, _ = run
    with browser.chromium() as driver:
        driver.get((directory / "docs" / "matrix.html").as_uri())
        cells = driver.find_elements(By.CSS_SELECTOR, "#matrix td.cell")
        assert len(cells) == len(SPECS) * (len(CLAUSES) + 1) and all(cell.is_displayed() for cell in cells[:5])
        assert not driver.find_element(By.ID, "details").is_displayed()

        panel = browser.open_details(driver, "dropout.train.drop-rate", "torch")
        assert "dropout.train.drop-rate:Dropout:float32" in panel.text and "run it again with:" in panel.text
        assert "nnconform --backend torch --seed 1 --max-examples 3 -k dropout.train.drop-rate:Dropout:float32" \
            in panel.text
        plots = panel.find_elements(By.CSS_SELECTOR, "svg.decision-plot")
        report = json.loads((directory / "reports" / "torch.json").read_text())
        (item,) = [item for item in report["items"] if item["id"] == "dropout.train.drop-rate:Dropout:float32"]
        assert len(plots) == 1 and len(plots[0].find_elements(By.CSS_SELECTOR, "g.decision")) == len(item["statistics"])
        assert plots[0].find_elements(By.CSS_SELECTOR, "rect.band") and plots[0].find_elements(
            By.CSS_SELECTOR, "circle.observed.pass")
        driver.save_screenshot(str(tmp_path / "matrix.png"))
        assert (tmp_path / "matrix.png").stat().st_size > 10_000

        panel = browser.open_details(driver, "dropout.train.survivor-scale", "torch")
        assert "known-deviation" in panel.text and "reproduce with:" in panel.text
        assert panel.find_element(By.LINK_TEXT, "torch-dropout-float16-scale-overflow")

        summary = driver.find_element(By.CSS_SELECTOR, "#matrix tr.summary-row td[data-col='5']")
        panel = browser.click(driver, summary)
        assert "matrix_backends:Aborts (aborts): crashed" in panel.text and "Fatal Python error: Aborted" in panel.text

        driver.find_element(By.ID, "close").click()
        assert not driver.find_element(By.ID, "details").is_displayed()


def test_committed_matrix_page_renders_in_chromium():
    needs_browser()
    from selenium.webdriver.common.by import By

    with browser.chromium() as driver:
        driver.get((REPO / "docs" / "matrix.html").as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#matrix tbody tr")
        columns = driver.find_elements(By.CSS_SELECTOR, "#matrix thead th.backend")
        assert len(rows) > 100 and {"torch", "reference", "torch-cuda"} <= {th.text for th in columns}
        panel = browser.open_details(driver, "dropout.train.drop-rate", "reference")
        assert panel.find_elements(By.CSS_SELECTOR, "svg.decision-plot g.decision")
