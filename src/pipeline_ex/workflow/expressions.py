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


def get_path(value: Any, path: str | Sequence[Any]) -> Any:
    """Follow ``a.b.0.c`` through mappings, sequences and attributes; ``_MISSING`` if absent.

    Attribute access is limited to public names: ``__class__`` and friends are never reached
    from a workflow, and an attribute whose getter raises reads as missing.
    """
    parts = path.split(".") if isinstance(path, str) else path
    for part in parts:
        if value is _MISSING:
            break
        if isinstance(part, str) and part == "":
            continue
        value = _step(value, part)
    return value


def _step(value: Any, part: Any) -> Any:
    if isinstance(value, Mapping):
        try:
            return value.get(part, _MISSING)
        except TypeError:  # an unhashable key
            return _MISSING
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if isinstance(part, bool) or not isinstance(part, int | str):
            return _MISSING
        try:
            return value[int(part)]
        except (ValueError, IndexError, TypeError):
            return _MISSING
    if not isinstance(part, str) or not part.isidentifier() or part.startswith("_"):
        return _MISSING
    if isinstance(value, str | bytes | int | float | complex | bool) or value is None:
        return _MISSING  # no methods or attributes of plain values
    try:
        return getattr(value, part, _MISSING)
    except Exception:
        return _MISSING


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


#: Longest expression text accepted; conditions and templates are short.
MAX_EXPRESSION_LENGTH = 2000
#: Deepest expression tree accepted (keeps evaluation far from the recursion limit).
MAX_EXPRESSION_DEPTH = 50
#: Longest string or list an expression may build (``'x' * 10**12`` is refused, not run).
MAX_RESULT_LENGTH = 1_000_000
#: Largest integer (in bits) an expression may build.
MAX_INT_BITS = 4096

_ALLOWED_NODES = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.BoolOp,
    ast.UnaryOp,
    ast.Compare,
    ast.BinOp,
    ast.List,
    ast.Tuple,
    ast.Load,
    ast.And,
    ast.Or,
    ast.Not,
    ast.USub,
    ast.UAdd,
    *_COMPARE,
    *_BINARY,
)


def _show(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except (RecursionError, ValueError, TypeError):
        return type(node).__name__


def _check_tree(tree: ast.AST, text: str) -> None:
    """Refuse, before evaluation, any construct the evaluator does not support."""
    stack: list[tuple[ast.AST, int, ast.AST]] = [(tree, 0, tree)]
    while stack:
        node, depth, parent = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionError(f"expression {text[:60]!r} is nested too deeply")
        if not isinstance(node, _ALLOWED_NODES):
            shown = _show(node if isinstance(node, ast.expr) else parent)
            raise ExpressionError(f"unsupported expression: {shown[:60]!r} in {text[:80]!r}")
        stack.extend((child, depth + 1, node) for child in ast.iter_child_nodes(node))


_STRING_LITERAL = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def _rewrite(code: str) -> str:
    code = _NUMERIC_SEGMENT.sub(r"[\1]", code)
    return re.sub(r"\s&&\s", " and ", re.sub(r"\s\|\|\s", " or ", code))


def _rewrite_outside_strings(text: str) -> str:
    """pipeline_ex spellings (``items.0``, ``&&``, ``||``) in Python terms, leaving quoted
    text alone: ``state.ver == 'v.2'`` compares with the string ``'v.2'``."""
    parts = _STRING_LITERAL.split(text)
    # split with one group: even indexes are code, odd ones the string literals
    return "".join(part if i % 2 else _rewrite(part) for i, part in enumerate(parts))


def _weight(value: Any, seen: dict[int, int] | None = None) -> int:
    """How large ``value`` is once expanded (a string's length, a list's elements' weights
    summed), computed once per shared object, so ``[[big] * 1000] * 1000`` is weighed
    without being built."""
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, list | tuple):
        return 1
    seen = {} if seen is None else seen
    known = seen.get(id(value))
    if known is None:
        known = 1 + sum(_weight(item, seen) for item in value)
        seen[id(value)] = known
    return known


@lru_cache(maxsize=4096)
def parse(text: str) -> ast.expr:
    """Parse an expression once; ``items.0.name`` is read as ``items[0].name``.

    Every failure, including constructs the evaluator does not support, is an
    ``ExpressionError``, so a condition's problems are found before anything runs.
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression {text[:40]!r}... is longer than {MAX_EXPRESSION_LENGTH} characters"
        )
    source = _rewrite_outside_strings(text.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {text!r}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot parse expression {text[:60]!r}: {exc}") from None
    _check_tree(tree, text)
    return tree.body


Resolver = Callable[[str], Any]


def evaluate(text: str, resolve: Resolver) -> Any:
    """Evaluate ``text``; ``resolve(name)`` gives the value of a top-level name.

    Raises only ``ExpressionError``.
    """
    return _eval(parse(text), resolve)


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _check_binary(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse operations whose result would be unreasonably large, before computing it."""
    if isinstance(op, ast.Mult):
        for seq, times in ((left, right), (right, left)):
            if _sized(seq) and isinstance(times, int) and _weight(seq) * times > MAX_RESULT_LENGTH:
                raise ExpressionError(f"result longer than {MAX_RESULT_LENGTH}; refused")
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > MAX_INT_BITS
        ):
            raise ExpressionError(f"integer larger than {MAX_INT_BITS} bits; refused")
    elif isinstance(op, ast.Add):
        if _sized(left) and _sized(right) and _weight(left) + _weight(right) > MAX_RESULT_LENGTH:
            raise ExpressionError(f"result longer than {MAX_RESULT_LENGTH}; refused")
    elif isinstance(op, ast.Mod) and not (
        isinstance(left, int | float) and isinstance(right, int | float)
    ):
        raise ExpressionError("'%' is arithmetic only (no string formatting)")


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
        if operand is _MISSING or not isinstance(operand, int | float | complex):
            raise ExpressionError(f"unary {_show(node)[:60]!r} needs a number")
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Compare):
        left = _eval(node.left, resolve)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, resolve)
            if left is _MISSING or right is _MISSING:
                return False
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except (TypeError, ValueError):
                return False
            left = right
        return True
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, resolve), _eval(node.right, resolve)
        if left is _MISSING or right is _MISSING:
            raise ExpressionError("arithmetic on a missing value")
        _check_binary(node.op, left, right)
        try:
            return _BINARY[type(node.op)](left, right)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ExpressionError(str(exc)) from None
    if isinstance(node, ast.List | ast.Tuple):
        items = [_eval(e, resolve) for e in node.elts]
        if _weight(items) > MAX_RESULT_LENGTH:
            raise ExpressionError(f"result larger than {MAX_RESULT_LENGTH} elements; refused")
        return items
    raise ExpressionError(f"unsupported expression: {_show(node)[:60]!r}")


def _truthy(value: Any) -> bool:
    return value is not _MISSING and bool(value)


def truthy(value: Any) -> bool:
    """Truthiness where a missing path is false."""
    return _truthy(value)
