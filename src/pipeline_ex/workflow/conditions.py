"""Step conditions: a dot path's truthiness, a comparison, or ``and``/``or``/``not`` mappings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline_ex.workflow.expressions import ExpressionError, evaluate, parse, truthy
from pipeline_ex.workflow.templates import whole_template

Resolver = Callable[[str], Any]


def _strip_braces(text: str) -> str:
    expression = whole_template(text)
    return expression if expression is not None else text


def check_condition(condition: Any) -> list[str]:
    """Problems with a condition's form, found before anything runs."""
    if isinstance(condition, bool):
        return []
    if isinstance(condition, str):
        try:
            parse(_strip_braces(condition))
        except ExpressionError as exc:
            return [str(exc)]
        return []
    if isinstance(condition, Mapping):
        if len(condition) != 1 or next(iter(condition)) not in ("and", "or", "not"):
            keys = ", ".join(repr(k) for k in condition) or "no keys"
            return [f"a condition mapping has one key, and/or/not; found {keys}"]
        ((op, operand),) = condition.items()
        if op == "not":
            return check_condition(operand)
        if not isinstance(operand, list) or not operand:
            return [f"'{op}' takes a non-empty list of conditions"]
        return [p for item in operand for p in check_condition(item)]
    return [f"a condition is a string, a boolean or an and/or/not mapping, not {condition!r}"]


def evaluate_condition(condition: Any, resolve: Resolver) -> bool:
    """True when the step should run."""
    if isinstance(condition, bool):
        return condition
    if isinstance(condition, str):
        return truthy(evaluate(_strip_braces(condition), resolve))
    if isinstance(condition, Mapping):
        ((op, operand),) = condition.items()
        if op == "not":
            return not evaluate_condition(operand, resolve)
        if op == "and":
            return all(evaluate_condition(c, resolve) for c in operand)
        return any(evaluate_condition(c, resolve) for c in operand)
    raise ExpressionError(f"invalid condition {condition!r}")
