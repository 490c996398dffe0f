"""The spec loader stops a run on a bad spec file, naming the file, the clause and the field.

Each bad spec is the real spec set copied to a temporary directory with one targeted
edit, so every case is a realistic near-miss of a valid file. Each case is checked
twice: through ``load_specs`` (SpecError's path, clause and field) and end to end,
where ``pytest --spec-dir BADDIR`` must stop with a usage error (exit code 4) before
any test runs and print the same message.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from nnconform.spec import SpecError, default_spec_dir, load_specs
from nnconform.vocabulary import CHECK_KINDS, DTYPES

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BadSpec:
    """One fault: replace `old` (which must occur exactly once) by `new` in `file`, or
    add `extra_files`; the loader must name `bad_file`, `clause` and `field`, and say
    `says`."""
    name: str
    file: str
    old: str
    new: str
    bad_file: str
    clause: str | None
    field: str | None
    says: str
    extra_files: tuple[tuple[str, str], ...] = ()


DUPLICATE_FAMILY = '''family = "dropout"
[layers.Dropout]
ranks = [1, 5]
[parameters.p]
kind = "float"
min = 0.0
max = 1.0
default = 0.5
[[clause]]
id = "dropout.eval.identity"
statement = "A second clause with an id that dropout.toml already uses."
mode = "eval"
check = "equals-input"
'''

P_ZERO = 'check = "equals-input"\nparams.p = { choices = [0.0] }'
SURVIVOR = 'at any p below 1.\nparams.p = { min = 0.0, max = 1.0, include = [0.5, 1e-7, 0.99999] }'
SURVIVOR_SCALE = 'check = "survivor-scale"\nexpected = "1/(1-p)"\n# p = 0.99999'
# The drop-rate clause's statistics line up to `why` (alpha and n change with the budget).
DROP_RATE_STATS = re.search(r'statistics = \{ alpha = [^,]+, power = 0.999, delta = 0.01, n = \d+, '
                            r'n_counts = "units of one call", why', (default_spec_dir() / "dropout.toml").read_text()).group(0)

CASES = [
    BadSpec("malformed TOML", "dropout.toml", 'id = "dropout.edge.p-zero"', 'id = "dropout.edge.p-zero',
            "dropout.toml", None, None, "malformed TOML"),
    BadSpec("duplicate id across files", "dropout.toml", "", "", "extra_dropout.toml", "dropout.eval.identity", "id",
            "duplicate clause id, first defined in", extra_files=(("extra_dropout.toml", DUPLICATE_FAMILY),)),
    BadSpec("unknown check kind", "dropout.toml", P_ZERO, P_ZERO.replace("equals-input", "equals-inptu"),
            "dropout.toml", "dropout.edge.p-zero", "check", "unknown check kind 'equals-inptu'"),
    BadSpec("unknown parameter", "dropout.toml", P_ZERO, P_ZERO.replace("params.p", "params.q"),
            "dropout.toml", "dropout.edge.p-zero", "params.q", "unknown parameter"),
    BadSpec("out-of-range domain", "dropout.toml", SURVIVOR, SURVIVOR.replace("max = 1.0", "max = 1.5"),
            "dropout.toml", "dropout.train.survivor-scale", "params.p.max", "outside the valid domain [0.0, 1.0]"),
    BadSpec("out-of-range include", "dropout.toml", SURVIVOR, SURVIVOR.replace("include = [0.5,", "include = [-0.5,"),
            "dropout.toml", "dropout.train.survivor-scale", "params.p.include", "outside the valid domain"),
    BadSpec("empty domain: min > max", "dropout.toml", SURVIVOR, SURVIVOR.replace("min = 0.0, max = 1.0", "min = 0.9, max = 0.1"),
            "dropout.toml", "dropout.train.survivor-scale", "params.p", "the domain is empty: min 0.9 > max 0.1"),
    BadSpec("empty domain: no choices", "dropout.toml", P_ZERO, P_ZERO.replace("[0.0]", "[]"),
            "dropout.toml", "dropout.edge.p-zero", "params.p.choices", "the domain is empty"),
    BadSpec("empty domain: no dtypes", "batchnorm.toml", 'input = { dtypes = ["float32"], per_channel = [1, 1] }',
            'input = { dtypes = [], per_channel = [1, 1] }',
            "batchnorm.toml", "batchnorm.train.single-value-error", "input.dtypes", "unknown or empty dtypes"),
    BadSpec("empty range: per_channel", "batchnorm.toml", 'input = { dtypes = ["float32"], per_channel = [1, 1] }',
            'input = { dtypes = ["float32"], per_channel = [2, 1] }',
            "batchnorm.toml", "batchnorm.train.single-value-error", "input.per_channel", "the range is empty"),
    BadSpec("missing tolerance for a dtype", "dropout.toml", "float16 = { rtol = 9.8e-4, atol = 6.0e-8 }\n", "",
            "dropout.toml", "dropout.train.survivor-scale", "tolerance.float16", "needs a tolerance for every dtype"),
    BadSpec("tolerance without why", "batchnorm.toml", 'why = "one rounding of the result', 'reason = "one rounding of the result',
            "batchnorm.toml", "batchnorm.train.output", "tolerance.why", "must say why"),
    BadSpec("missing statement", "dropout.toml", 'statement = "With p=0 the layer is the identity in train mode."\n', "",
            "dropout.toml", "dropout.edge.p-zero", "statement", "statement is required"),
    BadSpec("unknown field", "dropout.toml", P_ZERO, P_ZERO + '\ncolour = "red"',
            "dropout.toml", "dropout.edge.p-zero", "colour", "unknown field"),
    BadSpec("formula with a disallowed name", "dropout.toml", SURVIVOR_SCALE, SURVIVOR_SCALE.replace("1/(1-p)", "1/(1-q)"),
            "dropout.toml", "dropout.train.survivor-scale", "expected", "unknown name 'q'"),
    BadSpec("formula with a call", "dropout.toml", SURVIVOR_SCALE, SURVIVOR_SCALE.replace('"1/(1-p)"', """"__import__('os')" """),
            "dropout.toml", "dropout.train.survivor-scale", "expected", "Call is not allowed"),
    BadSpec("formula with attribute access", "dropout.toml", SURVIVOR_SCALE, SURVIVOR_SCALE.replace("1/(1-p)", "p.__class__"),
            "dropout.toml", "dropout.train.survivor-scale", "expected", "Attribute is not allowed"),
    BadSpec("formula with a comprehension", "dropout.toml", SURVIVOR_SCALE, SURVIVOR_SCALE.replace("1/(1-p)", "[p for p in ()]"),
            "dropout.toml", "dropout.train.survivor-scale", "expected", "ListComp is not allowed"),
    BadSpec("missing statistics on a statistical check", "dropout.toml", DROP_RATE_STATS, "# " + DROP_RATE_STATS,
            "dropout.toml", "dropout.train.drop-rate", "statistics", "requires this field"),
    BadSpec("statistics without n", "dropout.toml", DROP_RATE_STATS, re.sub(r"n = \d+, ", "", DROP_RATE_STATS),
            "dropout.toml", "dropout.train.drop-rate", "statistics.n", "positive integer"),
    BadSpec("statistics without alpha", "dropout.toml", DROP_RATE_STATS, re.sub(r"alpha = [^,]+, ", "", DROP_RATE_STATS),
            "dropout.toml", "dropout.train.drop-rate", "statistics.alpha", "expected a finite number"),
    BadSpec("statistics without n_counts", "dropout.toml", DROP_RATE_STATS,
            DROP_RATE_STATS.replace('n_counts = "units of one call", ', ""),
            "dropout.toml", "dropout.train.drop-rate", "statistics.n_counts", "must say what n counts"),
    BadSpec("statistics on a check that takes none", "dropout.toml", P_ZERO,
            P_ZERO + '\nstatistics = { power = 0.999, delta = 0.01, n = 1, why = "none" }',
            "dropout.toml", "dropout.edge.p-zero", "statistics", "does not take this field"),
    BadSpec("unknown mode", "dropout.toml", 'mode = "eval"\ncheck = "equals-input"', 'mode = "test"\ncheck = "equals-input"',
            "dropout.toml", "dropout.eval.identity", "mode", "must be one of ['train', 'eval']"),
    BadSpec("non-numeric bound", "batchnorm.toml", "params.calls = { min = 1, max = 4 }", 'params.calls = { min = 1, max = "4" }',
            "batchnorm.toml", "batchnorm.train.running-update", "params.calls.max", "expected a finite number"),
    BadSpec("budget out of range", "suite.toml", "false_alarm_budget = 1e-4", "false_alarm_budget = 0.0",
            "suite.toml", None, "statistics.false_alarm_budget", "outside the valid domain"),
    BadSpec("suite convention default not a variant", "suite.toml", 'default = "at-build"', 'default = "at-buld"',
            "suite.toml", None, "conventions.validation.default", "must be one of the variants"),
    BadSpec("family redeclares a suite convention", "groupnorm.toml", "[normalization]\nover",
            '[conventions.validation]\ndefault = "at-build"\nvariants = ["at-build"]\n\n[normalization]\nover',
            "groupnorm.toml", None, "conventions.validation", "declared in suite.toml"),
    BadSpec("clause names an unknown convention", "dropout.toml", 'conventions = ["validation"]',
            'conventions = ["validaton"]', "dropout.toml", "dropout.init.p-range", "conventions",
            "must list conventions of this family"),
]


def make_bad_dir(tmp_path: Path, case: BadSpec) -> Path:
    spec_dir = tmp_path / "specs"
    shutil.copytree(default_spec_dir(), spec_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    if case.old:
        path = spec_dir / case.file
        text = path.read_text()
        assert text.count(case.old) == 1, f"the fault {case.name!r} no longer matches {case.file}: update the case"
        path.write_text(text.replace(case.old, case.new))
    for name, text in case.extra_files:
        (spec_dir / name).write_text(text)
    return spec_dir


def test_the_real_specs_load():
    specs = load_specs()
    assert specs.clauses, "no clauses loaded"
    assert {"dropout", "batchnorm", "channel-dropout", "alpha-dropout", "feature-alpha-dropout", "layernorm",
            "rmsnorm"} <= {c.family for c in specs.clauses}
    assert len({c.id for c in specs.clauses}) == len(specs.clauses)
    assert all(c.statistics["n"] >= 1 for c in specs.clauses if c.statistical)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_load_specs_names_file_clause_and_field(tmp_path, case):
    spec_dir = make_bad_dir(tmp_path, case)
    with pytest.raises(SpecError) as caught:
        load_specs(spec_dir)
    error = caught.value
    assert Path(error.path) == spec_dir / case.bad_file, f"path {error.path}, expected {case.bad_file} [{case.name}]"
    assert error.clause == case.clause, f"clause {error.clause!r}, expected {case.clause!r} [{case.name}]"
    assert error.field == case.field, f"field {error.field!r}, expected {case.field!r} [{case.name}]"
    assert case.says in str(error), f"message {str(error)!r} lacks {case.says!r} [{case.name}]"
    for part in filter(None, (case.bad_file, case.clause, case.field)):
        assert part in str(error), f"message {str(error)!r} does not name {part!r}"


# One of each kind of fault for the end-to-end run: every SpecError takes the same path
# through the plugin, and each subprocess costs about two seconds of imports.
END_TO_END = ("malformed TOML", "duplicate id across files", "unknown check kind", "unknown parameter",
              "out-of-range domain", "empty domain: min > max", "missing tolerance for a dtype", "formula with a call",
              "missing statistics on a statistical check")


@pytest.mark.parametrize("case", [c for c in CASES if c.name in END_TO_END],
                         ids=[c.name for c in CASES if c.name in END_TO_END])
def test_pytest_stops_before_any_test(tmp_path, case):
    """End to end: a usage error (exit code 4), the message on the terminal, no test run."""
    spec_dir = make_bad_dir(tmp_path, case)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-p", "no:xdist", "--spec-dir", str(spec_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, f"exit code {result.returncode}, expected 4:\n{output}"
    assert "invalid spec:" in output and case.says in output, f"message missing [{case.name}]:\n{output}"
    assert str(spec_dir / case.bad_file) in output
    for word in ("passed", "failed", "collected", "test session starts"):
        assert word not in output, f"{word!r} in the output: a test phase began [{case.name}]:\n{output}"


def test_every_check_kind_and_dtype_is_reachable_from_a_spec():
    """The vocabulary the loader validates against is the one the specs use: every
    check kind and every dtype appears in some real clause (an unused kind is dead code)."""
    specs = load_specs()
    assert {c.check for c in specs.clauses} == set(CHECK_KINDS)
    assert {d for c in specs.clauses for d in c.input.dtypes} == set(DTYPES)
