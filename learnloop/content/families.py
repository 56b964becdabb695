"""Item families: one authored item whose numbers are drawn afresh for each presentation.

A family item's ``stem``, ``explanation``, ``hints`` and ``unit`` are templates with ``{name}``
placeholders (``{name:.2f}`` for a format; ``{{`` and ``}}`` for literal braces), and its
``family`` block says how to draw the names and compute the key::

    family:
      params:                            # drawn for each instance
        tp: {int: [20, 90]}              # an integer in [20, 90]
        rate: {float: [0.1, 0.9], step: 0.05}
        model: {choice: [spam filter, fraud model]}
      let:                               # derived values, in order
        f1: "2 * tp / (2 * tp + fp + fn)"
      answer: "round(f1, 3)"             # the key of the instance
      where: "fp != fn"                  # optional: instances failing it are drawn again
      examples:                          # worked out by hand; the generator must agree
        - {tp: 40, fp: 10, fn: 10, answer: 0.8}

Expressions are evaluated by :func:`evaluate`, a small evaluator over Python's expression
syntax that knows only numbers, strings, lists, arithmetic, comparisons, ``x if c else y`` and
a fixed set of functions: pack text is never passed to ``eval``. An instance is a pure function of
the item and a seed (:meth:`Item.instance`); practice derives the seed from the presentation's id
(:func:`seed_for`), which is stored with the response, so grading and review are reproducible.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import math
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

MAX_EXPRESSION = 400
MAX_NODES = 120
MAX_MAGNITUDE = 1e18
#: instances that fail ``where`` are drawn again this often before the family is refused
MAX_REDRAWS = 200
#: how many instances a family is checked on when a pack is loaded
CHECKED_SEEDS = 64


class FamilyError(ValueError):
    """A family that cannot generate an instance (bad expression, bad template, no instance)."""


def _pow(a: float, b: float) -> float:
    if abs(b) > 64 or (abs(a) > 1e6 and abs(b) > 3):
        raise FamilyError("power too large")
    return float(a) ** b


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "int": int,
    "float": float,
    "len": len,
    "sum": sum,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "ceil": math.ceil,
    "floor": math.floor,
    "comb": math.comb,
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "True": True, "False": False}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: _pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}


def parse_expression(source: str) -> ast.Expression:
    """Parse ``source`` as a family expression; refuse anything the evaluator does not know.
    The tree is shared (cached per source) and must not be modified."""
    if not isinstance(source, str) or not source.strip():
        raise FamilyError("an expression must be a non-empty string")
    return _parse_checked(source)


@functools.lru_cache(maxsize=8192)
def _parse_checked(source: str) -> ast.Expression:
    if len(source) > MAX_EXPRESSION:
        raise FamilyError(f"expression longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise FamilyError(f"{exc.msg} in {source!r}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise FamilyError(f"expression {source!r} is too large")
    allowed = (
        ast.Expression,
        ast.Constant,
        ast.Name,
        ast.Load,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.Call,
        ast.List,
        ast.Tuple,
        ast.Subscript,
        ast.And,
        ast.Or,
        ast.Not,
        ast.USub,
        ast.UAdd,
        *_BINARY,
        *_COMPARE,
    )
    for node in nodes:
        if not isinstance(node, allowed):
            raise FamilyError(f"{type(node).__name__} is not allowed in {source!r}")
        if isinstance(node, ast.Call) and (
            not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords
        ):
            raise FamilyError(
                f"only the functions {', '.join(sorted(_FUNCTIONS))} may be called in {source!r}"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str | bool):
            raise FamilyError(f"constant {node.value!r} is not allowed in {source!r}")
    return tree


def _names(tree: ast.AST) -> set[str]:
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def expression_names(source: str) -> set[str]:
    """The value names an expression reads (functions and constants excluded)."""
    return _names(parse_expression(source)) - set(_CONSTANTS)


def evaluate(source: str, values: Mapping[str, Any]) -> Any:
    """The value of family expression ``source`` with ``values`` bound to its names."""
    tree = parse_expression(source)

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in values:
                return values[node.id]
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            raise FamilyError(f"unknown name {node.id!r} in {source!r}")
        if isinstance(node, ast.BinOp):
            out = _BINARY[type(node.op)](ev(node.left), ev(node.right))
            if isinstance(out, int | float) and not isinstance(out, bool) and abs(out) > MAX_MAGNITUDE:
                raise FamilyError(f"{source!r} gives a number larger than {MAX_MAGNITUDE:g}")
            if isinstance(out, str | list | tuple) and len(out) > 10_000:
                raise FamilyError(f"{source!r} builds a value that is too long")
            return out
        if isinstance(node, ast.UnaryOp):
            operand = ev(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                result: Any = True
                for v in node.values:
                    result = ev(v)
                    if not result:
                        return result
                return result
            result = False
            for v in node.values:
                result = ev(v)
                if result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = ev(comp)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return _FUNCTIONS[node.func.id](*(ev(a) for a in node.args))
        if isinstance(node, ast.List | ast.Tuple):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Subscript):
            return ev(node.value)[ev(node.slice)]
        raise FamilyError(f"{type(node).__name__} is not allowed")  # pragma: no cover - parse refuses

    try:
        return ev(tree)
    except FamilyError:
        raise
    except (ArithmeticError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise FamilyError(f"{source!r} fails: {exc}") from None


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}|[{}]")
_FORMAT_SPEC = re.compile(r"^[<>^=]?[+\- ]?,?(\d{1,2})?(\.\d{1,2})?[dfegn%]?$")


def placeholders(template: str) -> set[str]:
    """The names a template uses (``{name}`` or ``{name:spec}``)."""
    return {m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)}


def format_value(value: Any, spec: str | None = None) -> str:
    if spec:
        return format(value, spec)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def render(template: str, values: Mapping[str, Any], *, code: bool = False) -> str:
    """``template`` with every placeholder replaced by its value. A name without a value, a format
    other than a plain number format, or a lone brace is a :class:`FamilyError`. In ``code``
    (a case's call or setup) a value without a format is written as a Python literal (``repr``)."""

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name, spec = m.group(1), m.group(2)
        if name is None:
            raise FamilyError(f"a lone {token!r} in a family template (write {token * 2} for a brace)")
        if name not in values:
            raise FamilyError(f"the template uses {{{name}}}, which the family does not define")
        if spec is not None and not _FORMAT_SPEC.match(spec):
            raise FamilyError(f"format {spec!r} of {{{name}}} is not a number format")
        try:
            if code and spec is None:
                return repr(values[name])
            return format_value(values[name], spec)
        except (ValueError, TypeError) as exc:
            raise FamilyError(f"cannot format {{{name}:{spec}}}: {exc}") from None

    return _PLACEHOLDER.sub(one, template)


def seed_for(presentation_id: str) -> int:
    """The instance seed of a presentation (stable: a stored response's presentation id gives
    back the instance the learner saw)."""
    return int(hashlib.sha256(presentation_id.encode()).hexdigest()[:12], 16)


def rng_for(item_id: str, seed: int) -> random.Random:
    return random.Random(f"{item_id}:{seed}")
