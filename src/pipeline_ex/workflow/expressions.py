"""Dot paths and the small expression language of conditions and templates.

pipeline_ex conditions look like ``review.score >= 8`` or ``state.i < state.max``; templates
look like ``{{steps.analyze.text}}``.  Expressions are parsed with Python's ``ast`` and
evaluated by a whitelist walker: names, attribute and index access, literals, comparisons,
``and``/``or``/``not`` and arithmetic.  Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

_MISSING = object()


class ExpressionError(ValueError):
    """The text is not an expression this language understands."""


def get_path(value: Any, path: str | Sequence[str | int]) -> Any:
    """Follow ``a.b.0.c`` through mappings, sequences and attributes; ``_MISSING`` if absent."""
    parts = path.split(".") if isinstance(path, str) else path
    for part in parts:
        if part == "" or value is _MISSING:
            continue
        if isinstance(value, Mapping):
            if part in value:
                value = value[part]
                continue
            value = _MISSING
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            try:
                value = value[int(part)]
            except (ValueError, IndexError):
                value = _MISSING
        else:
            value = getattr(value, str(part), _MISSING)
    return value


def missing(value: Any) -> bool:
    return value is _MISSING


_NUMERIC_SEGMENT = re.compile(r"(?<=[A-Za-z_\]\)])\.(\d+)\b")
_LITERALS = {"true": True, "false": False, "null": None, "nil": None, "none": None}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


@lru_cache(maxsize=4096)
def parse(text: str) -> ast.expr:
    """Parse an expression once; ``items.0.name`` is read as ``items[0].name``."""
    source = _NUMERIC_SEGMENT.sub(r"[\1]", text.strip())
    source = re.sub(r"\s&&\s", " and ", re.sub(r"\s\|\|\s", " or ", source))
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {text!r}: {exc.msg}") from None
    return tree.body


Resolver = Callable[[str], Any]


def evaluate(text: str, resolve: Resolver) -> Any:
    """Evaluate ``text``; ``resolve(name)`` gives the value of a top-level name."""
    return _eval(parse(text), resolve)


def _eval(node: ast.expr, resolve: Resolver) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        lowered = node.id.lower()
        if lowered in _LITERALS:
            return _LITERALS[lowered]
        return resolve(node.id)
    if isinstance(node, ast.Attribute):
        return get_path(_eval(node.value, resolve), [node.attr])
    if isinstance(node, ast.Subscript):
        base = _eval(node.value, resolve)
        index = _eval(node.slice, resolve)
        return get_path(base, [index])
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = _eval(value, resolve)
                if not _truthy(result):
                    return result
            return result
        for value in node.values:
            result = _eval(value, resolve)
            if _truthy(result):
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, resolve)
        if isinstance(node.op, ast.Not):
            return not _truthy(operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return +operand
    if isinstance(node, ast.Compare):
        left = _eval(node.left, resolve)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, resolve)
            if left is _MISSING or right is _MISSING:
                return False
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, resolve), _eval(node.right, resolve)
        if left is _MISSING or right is _MISSING:
            raise ExpressionError("arithmetic on a missing value")
        try:
            return _BINARY[type(node.op)](left, right)
        except (TypeError, ZeroDivisionError) as exc:
            raise ExpressionError(str(exc)) from None
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, resolve) for e in node.elts]
    raise ExpressionError(f"unsupported expression: {ast.unparse(node)!r}")


def _truthy(value: Any) -> bool:
    return value is not _MISSING and bool(value)


def truthy(value: Any) -> bool:
    """Truthiness where a missing path is false."""
    return _truthy(value)
