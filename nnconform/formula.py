"""A small safe evaluator for the formulas in spec files, such as ``1/(1-p)``.

A spec file is data and can never run code. Formulas are parsed with ``ast`` and
only arithmetic over numbers and named parameters is accepted: no calls, no
attribute access, no subscripts, no comprehensions, no lambdas. Anything else is
rejected when the spec is loaded, with the construct named.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Mapping

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_LENGTH = 200


class FormulaError(ValueError):
    """A formula uses a construct or a name that is not allowed."""


class Formula:
    """A parsed arithmetic expression over named parameters."""

    def __init__(self, text: str, allowed_names: frozenset[str] | set[str]):
        if not isinstance(text, str):
            raise FormulaError(f"a formula must be a string, got {type(text).__name__}")
        if len(text) > _MAX_LENGTH:
            raise FormulaError(f"formula is longer than {_MAX_LENGTH} characters")
        try:
            with warnings.catch_warnings():  # e.g. "invalid decimal literal": an error either way
                warnings.simplefilter("ignore")
                tree = ast.parse(text, mode="eval")
        except SyntaxError as error:
            raise FormulaError(f"formula {text!r} is not valid arithmetic: {error.msg}") from None
        except ValueError as error:  # a NUL byte: ValueError, not SyntaxError, before Python 3.12
            raise FormulaError(f"formula {text!r} is not valid arithmetic: {error}") from None
        self.text = text
        self.names = frozenset(_validate(tree.body, frozenset(allowed_names), text))
        self._body = tree.body

    def __call__(self, values: Mapping[str, float]) -> float:
        missing = self.names - values.keys()
        if missing:
            raise FormulaError(f"formula {self.text!r} needs values for {sorted(missing)}")
        try:
            result = _evaluate(self._body, {name: float(values[name]) for name in self.names})
        except (ArithmeticError, ValueError) as error:
            raise FormulaError(f"formula {self.text!r} cannot be evaluated at {dict(values)}: {error}") from None
        if not isinstance(result, float):  # a negative base to a fractional power gives a complex number
            raise FormulaError(f"formula {self.text!r} is not a real number at {dict(values)}: {result!r}")
        return result

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"


def _validate(node: ast.AST, allowed: frozenset[str], text: str) -> set[str]:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise FormulaError(f"formula {text!r}: only numeric constants are allowed, got {node.value!r}")
        try:
            finite = math.isfinite(node.value)
        except OverflowError:
            finite = False
        if not finite:
            raise FormulaError(f"formula {text!r}: the constant {node.value!r} is not a finite float")
        return set()
    if isinstance(node, ast.Name):
        if node.id not in allowed:
            raise FormulaError(
                f"formula {text!r}: unknown name {node.id!r}; allowed names are {sorted(allowed)}"
            )
        return {node.id}
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _validate(node.left, allowed, text) | _validate(node.right, allowed, text)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _validate(node.operand, allowed, text)
    construct = type(node).__name__
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        construct = f"the operator {type(node.op).__name__}"
    raise FormulaError(
        f"formula {text!r}: {construct} is not allowed; "
        "only numbers, parameter names, + - * / ** and parentheses are"
    )


def _evaluate(node: ast.AST, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    return _UNARY[type(node.op)](_evaluate(node.operand, values))
