"""A safe expression language for `minigrad graph "tanh(x) * y + x"`.

The text is parsed by Python's `ast` module (parsing runs no code) and every
node is checked against a small grammar before anything is evaluated:

    expr  := expr (+ - * / ** @) expr | -expr | +expr | (expr)
           | number | variable | function(expr, ..., keyword=literal, ...)

Functions are a fixed list of `minigrad.functional` ops; any other name
(without a leading underscore) is a variable. Attribute access,
subscripts, lambdas, comprehensions, strings and everything else are
rejected with a message naming what was found. Nothing goes through `eval`.
"""

from __future__ import annotations

import ast
import math
import operator
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from minigrad import functional as F
from minigrad.engine import Tensor

__all__ = ["Expression", "ExpressionError", "FUNCTIONS", "parse"]

# Ops that take tensors and return a tensor with a gradient.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(F, name)
    for name in (
        "add", "sub", "mul", "div", "neg", "pow", "matmul", "dot",
        "exp", "log", "sqrt", "sin", "cos", "tanh", "abs",
        "maximum", "minimum", "clip",
        "sigmoid", "relu", "leaky_relu", "step",
        "softmax", "log_softmax", "logsumexp",
        "sum", "mean", "max", "min", "transpose",
        "mean_squared_error",
    )
}  # fmt: skip

MAX_LENGTH = 500  # keeps nesting, and so the checker's recursion, shallow

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: F.add,
    ast.Sub: F.sub,
    ast.Mult: F.mul,
    ast.Div: F.div,
    ast.Pow: F.pow,
    ast.MatMult: F.matmul,
}

# What a reader would call the constructs we refuse.
_WHAT = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "lambda",
    ast.Compare: "comparison",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "*-unpacking",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


class ExpressionError(ValueError):
    """The text is not an expression of the grammar in `minigrad.viz.expr`."""


class Expression:
    """A checked expression: call it with one tensor per variable."""

    def __init__(self, text: str, tree: ast.expr, variables: tuple[str, ...]) -> None:
        self.text, self._tree, self.variables = text, tree, variables

    def __call__(self, **values: Tensor) -> Tensor:
        """The output; a part whose value overflows or is undefined (x/0, the log of a
        negative number) is an ExpressionError naming it, not a NumPy warning."""
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ExpressionError(f"no value for variable(s) {', '.join(missing)}")
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            result = _evaluate(self._tree, values)
        if not isinstance(result, Tensor):
            raise ExpressionError(f"{self.text!r} uses no variables, so it has no graph to draw")
        return result

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def parse(text: str) -> Expression:
    """Check `text` against the grammar; raise `ExpressionError` saying what is not allowed."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression too long ({len(text)} characters; at most {MAX_LENGTH})")
    stripped = text.strip()  # leading spaces would be an "unexpected indent"
    lead = len(text) - len(text.lstrip())  # ... so columns are counted back from here
    try:
        tree = ast.parse(stripped, mode="eval").body
    except SyntaxError as e:
        if not e.offset:  # the parser ran out of text: the mistake is at the end
            raise ExpressionError(
                f"incomplete expression {text!r}: something is missing at its end "
                f"(column {lead + len(stripped) + 1})"
            ) from None
        raise ExpressionError(
            f"invalid syntax in {text!r} at column {lead + e.offset}: {e.msg}"
        ) from None
    for node in ast.walk(tree):  # report columns of the text as given
        if getattr(node, "lineno", None) == 1:
            node.col_offset += lead
    variables: dict[str, None] = {}  # ordered set, in order of first use
    _check(tree, variables)
    return Expression(text, tree, tuple(variables))


def _fail(node: ast.AST, message: str) -> ExpressionError:
    column = getattr(node, "col_offset", None)
    where = f" (column {column + 1})" if column is not None else ""
    return ExpressionError(message + where)


def _check_name(node: ast.Name) -> None:
    if node.id.startswith("_"):
        raise _fail(node, f"names starting with '_' are not allowed: {node.id!r}")


def _check(node: ast.AST, variables: dict[str, None]) -> None:
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _fail(node, f"operator {type(node.op).__name__} is not allowed; use + - * / ** @")
        _check(node.left, variables)
        _check(node.right, variables)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise _fail(node, f"unary {type(node.op).__name__} is not allowed; only - and +")
        _check(node.operand, variables)
    elif isinstance(node, ast.Constant):
        if not _is_number(node.value):
            raise _fail(node, f"only numbers are allowed as constants, got {node.value!r}")
        if isinstance(node.value, int) and abs(node.value) > sys.float_info.max:
            digits = str(node.value)
            shown = digits if len(digits) <= 20 else f"{digits[:10]}...{digits[-5:]}"
            raise _fail(
                node,
                f"the number {shown} ({len(digits)} digits) is too large; numbers must be "
                f"below {sys.float_info.max:.4g}",
            )
    elif isinstance(node, ast.Name):
        _check_name(node)
        if node.id in FUNCTIONS:
            raise _fail(node, f"{node.id} is a function; call it, e.g. {node.id}(x)")
        variables.setdefault(node.id)
    elif isinstance(node, ast.Call):
        _check_call(node, variables)
    else:
        what = _WHAT.get(type(node), type(node).__name__)
        raise _fail(node, f"{what} is not allowed in an expression")


def _check_call(node: ast.Call, variables: dict[str, None]) -> None:
    func = node.func
    if not isinstance(func, ast.Name):
        what = _WHAT.get(type(func), type(func).__name__)
        raise _fail(func, f"only calls of the functions by name are allowed, not {what}")
    _check_name(func)
    if func.id not in FUNCTIONS:
        raise _fail(
            func, f"unknown function {func.id!r}; available: {', '.join(sorted(FUNCTIONS))}"
        )
    for arg in node.args:
        _check(arg, variables)
    for kw in node.keywords:
        if kw.arg is None:
            raise _fail(kw, "**-unpacking is not allowed")
        if kw.arg.startswith("_"):
            raise _fail(kw, f"names starting with '_' are not allowed: {kw.arg!r}")
        _literal(kw.value)  # raises if the value is not a literal


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _literal(node: ast.expr) -> Any:
    """A keyword's value: a number, True/False/None, or a tuple of those (an axis tuple)."""
    if isinstance(node, ast.Constant) and (
        _is_number(node.value) or node.value in (True, False, None)
    ):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal(node.operand)
        if _is_number(value):
            return -value
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    raise _fail(node, "keyword values must be numbers, True, False, None or tuples of them")


# Arithmetic on two numbers is done in Python, as Python would: through the ops it would
# go through NumPy's int64 (2**64 is 0) and come out a NumPy scalar, which promotes a
# float32 tensor to float64. math.pow raises where float ** would overflow or go complex.
_FOLD: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: math.pow,
}


def _evaluate(node: ast.expr, values: Mapping[str, Tensor]) -> Any:
    # Only nodes that passed _check reach here.
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        fold = _FOLD.get(type(node.op))
        if fold is not None and _is_number(left) and _is_number(right):
            try:
                return fold(left, right)
            except (ArithmeticError, ValueError) as e:  # overflow, 1/0, math domain error
                raise ExpressionError(f"in {ast.unparse(node)}: {e}") from None
        try:
            return _BINARY[type(node.op)](left, right)
        except FloatingPointError as e:
            raise ExpressionError(f"in {ast.unparse(node)}: {e}") from None
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        if isinstance(node.op, ast.UAdd):
            return operand
        return -operand if _is_number(operand) else F.neg(operand)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    args = [_evaluate(a, values) for a in node.args]
    kwargs = {kw.arg: _literal(kw.value) for kw in node.keywords}
    try:
        return FUNCTIONS[node.func.id](*args, **kwargs)
    except (TypeError, OverflowError) as e:  # OverflowError: an axis too large for C
        raise ExpressionError(f"in {node.func.id}(...): {e}") from None
    except FloatingPointError as e:
        raise ExpressionError(f"in {ast.unparse(node)}: {e}") from None
