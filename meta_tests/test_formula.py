"""The safe formula evaluator: arithmetic over named parameters, and nothing else.

A spec file is data: no formula may run code. Disallowed constructs are rejected
when the formula is parsed (so when the spec is loaded, before any test), with the
construct named; a fuzzer shows that nothing but FormulaError ever escapes and that
every accepted formula is pure arithmetic.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnconform.formula import Formula, FormulaError
from nnconform.spec import SpecError, default_spec_dir, load_specs

REPO = Path(__file__).resolve().parents[1]
NAMES = frozenset({"p", "x", "momentum", "calls"})

# The only AST nodes an accepted formula may contain.
ARITHMETIC_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load,
                    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.UAdd, ast.USub)


@pytest.mark.parametrize("text, values, expected", [
    ("1/(1-p)", {"p": 0.5}, 2.0),
    ("1/(1-p)", {"p": 0.75}, 4.0),
    ("-x**2", {"x": 3.0}, -9.0),            # ** binds tighter than unary minus
    ("(-x)**2", {"x": 3.0}, 9.0),
    ("2+3*4", {}, 14.0),
    ("(2+3)*4", {}, 20.0),
    ("2**3**2", {}, 512.0),                 # ** is right-associative
    ("8/4/2", {}, 1.0),                     # / is left-associative
    ("1 - momentum + +calls", {"momentum": 0.25, "calls": 2}, 2.75),
    ("0", {}, 0.0),
    ("1e-5 * calls", {"calls": 3}, 3e-5),
])
def test_arithmetic_over_named_parameters(text, values, expected):
    formula = Formula(text, NAMES)
    assert formula(values) == pytest.approx(expected, rel=1e-15)
    assert isinstance(formula(values), float)
    assert formula.names == frozenset(values), f"{text!r} uses {sorted(formula.names)}"


@pytest.mark.parametrize("text, construct", [
    ("__import__('os')", "Call"),
    ("__import__('os').system('true')", "Call"),
    ("p.__class__", "Attribute"),
    ("p.__class__.__mro__", "Attribute"),
    ("abs(p)", "Call"),
    ("p(1)", "Call"),
    ("p[0]", "Subscript"),
    ("[q for q in p]", "ListComp"),
    ("{q for q in p}", "SetComp"),
    ("{q: 1 for q in p}", "DictComp"),
    ("(q for q in p)", "GeneratorExp"),
    ("lambda: 1", "Lambda"),
    ("(lambda: 1)()", "Call"),
    ("'p'", "only numeric constants"),
    ("b'p'", "only numeric constants"),
    ("True", "only numeric constants"),
    ("False + 1", "only numeric constants"),
    ("None", "only numeric constants"),
    ("...", "only numeric constants"),
    ("1j", "only numeric constants"),
    ("1e999", "not a finite float"),
    ("q", "unknown name 'q'"),
    ("os", "unknown name 'os'"),
    ("__builtins__", "unknown name '__builtins__'"),
    ("(p := 1)", "NamedExpr"),
    ("f'{p}'", "JoinedStr"),
    ("p if p else 1", "IfExp"),
    ("p < 1", "Compare"),
    ("p and 1", "BoolOp"),
    ("not p", "operator Not"),
    ("~p", "operator Invert"),
    ("p % 2", "operator Mod"),
    ("p // 2", "operator FloorDiv"),
    ("p @ p", "operator MatMult"),
    ("p << 2", "operator LShift"),
    ("(p, 1)", "Tuple"),
    ("[p]", "List"),
    ("{p: 1}", "Dict"),
    ("p; 1", "not valid arithmetic"),
    ("import os", "not valid arithmetic"),
    ("p = 1", "not valid arithmetic"),
    ("", "not valid arithmetic"),
    ("1" + "+1" * 100, "longer than 200 characters"),
    ("(" * 150 + "p" + ")" * 150, "longer than 200 characters"),
    (1.5, "must be a string"),
])
def test_disallowed_constructs_are_rejected_and_named(text, construct):
    with pytest.raises(FormulaError) as caught:
        Formula(text, NAMES)
    assert construct in str(caught.value), f"{text!r}: message {str(caught.value)!r} does not name {construct!r}"


@pytest.mark.parametrize("text, values, problem", [
    ("1/(1-p)", {"p": 1.0}, "division by zero"),
    ("(-1)**0.5", {}, "not a real number"),
    ("9**9**9", {}, "out of range"),     # evaluated in floats: an overflow, never a huge integer
    ("x", {}, "needs values for ['x']"),
])
def test_evaluation_problems_are_formula_errors(text, values, problem):
    formula = Formula(text, NAMES)
    with pytest.raises(FormulaError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        formula(values)


def test_a_formula_never_calls_anything():
    """A name bound to a callable is only ever read as a number: the call is rejected
    at parse time, so the function is never run."""
    calls = []

    def sentinel(*args):
        calls.append(args)
        return 1.0

    for text in ("sentinel()", "sentinel(p)", "sentinel.__call__()", "[sentinel() for _ in p]"):
        with pytest.raises(FormulaError):
            Formula(text, NAMES | {"sentinel"})(({"p": 0.5, "sentinel": sentinel}))
    assert calls == []


ATTACKS = [
    "__import__('pathlib').Path('{sentinel}').write_text('pwned')",
    "open('{sentinel}', 'w')",
    "(lambda: __import__('os').system('touch {sentinel}'))()",
    "[__import__('os').system('touch {sentinel}') for _ in (1,)]",
    "p.__class__.__base__.__subclasses__()",
]


def _spec_dir_with_formula(tmp_path: Path, formula: str) -> Path:
    spec_dir = tmp_path / "specs"
    shutil.copytree(default_spec_dir(), spec_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    path = spec_dir / "dropout.toml"
    text = path.read_text()
    assert text.count('expected = "1/(1-p)"') == 2 and '"' not in formula and '\\' not in formula
    path.write_text(text.replace('expected = "1/(1-p)"', f'expected = "{formula}"', 1))
    return spec_dir


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_spec_file_cannot_run_code(tmp_path, attack):
    sentinel = tmp_path / "sentinel"
    spec_dir = _spec_dir_with_formula(tmp_path, attack.format(sentinel=sentinel))
    with pytest.raises(SpecError) as caught:
        load_specs(spec_dir)
    assert (caught.value.clause, caught.value.field) == ("dropout.train.survivor-scale", "expected")
    assert not sentinel.exists(), "loading the spec ran code from a formula"


def test_a_spec_file_cannot_run_code_end_to_end(tmp_path):
    """The same through pytest: the run stops with a usage error and the sentinel
    file that the formula tries to write never appears."""
    sentinel = tmp_path / "sentinel"
    spec_dir = _spec_dir_with_formula(tmp_path, ATTACKS[0].format(sentinel=sentinel))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-p", "no:xdist", "--spec-dir", str(spec_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "Call is not allowed" in result.stderr
    assert not sentinel.exists(), "running pytest on the spec ran code from a formula"


# Fragments a formula attack is built from, so the fuzzer reaches deep into the grammar
# rather than stopping at the first syntax error of random characters.
FRAGMENTS = ["p", "x", "q", "1", "0", "2.5", "1e308", "1e-5", "+", "-", "*", "/", "**", "%", "//", "(", ")",
             "[", "]", "{", "}", ".", ",", ":", "=", ":=", " ", "'", '"', "f'", "__import__", "__class__",
             "lambda", "for", "in", "if", "else", "not", "and", "<", "True", "None", "os", "\\", "\n", "#", "\x00"]


@settings(max_examples=600, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(st.characters(max_codepoint=127), max_size=40),
                      st.lists(st.sampled_from(FRAGMENTS), max_size=20).map("".join)),
       p=st.floats(-2.0, 2.0), x=st.floats(-1e3, 1e3))
def test_fuzz_only_formula_errors_and_only_arithmetic(text, p, x):
    try:
        formula = Formula(text, {"p", "x"})
    except FormulaError:
        return
    tree = ast.parse(text, mode="eval")
    foreign = [type(node).__name__ for node in ast.walk(tree) if not isinstance(node, ARITHMETIC_NODES)]
    assert not foreign, f"{text!r} was accepted but contains {foreign}"
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert names <= {"p", "x"} and formula.names == names
    try:
        value = formula({"p": p, "x": x})
    except FormulaError:
        return
    assert isinstance(value, float)
