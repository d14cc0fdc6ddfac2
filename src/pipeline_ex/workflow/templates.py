"""``{{...}}`` interpolation in step definitions.

A string that is exactly one template yields the raw value (so ``data_source:
"{{steps.list.items}}"`` gives a list); templates inside longer text are rendered as text,
mappings and lists as JSON.  A template that does not resolve is left as written, as
pipeline_ex does, so ``{{timestamp}}`` in a corpus file survives to the output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from pipeline_ex.workflow.expressions import ExpressionError, evaluate, missing

TEMPLATE = re.compile(r"\{\{\s*(.+?)\s*\}\}", re.DOTALL)

Resolver = Callable[[str], Any]


def to_text(value: Any) -> str:
    """How a value appears inside a prompt or a string: text as is, structures as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _resolve_expression(expression: str, resolve: Resolver) -> Any:
    try:
        return evaluate(expression, resolve)
    except (ExpressionError, RecursionError):
        return _UNRESOLVED


_UNRESOLVED = object()


def render(text: str, resolve: Resolver) -> Any:
    """Interpolate one string."""
    if "{{" not in text:
        return text
    whole = TEMPLATE.fullmatch(text.strip())
    if whole is not None:
        value = _resolve_expression(whole.group(1), resolve)
        if value is _UNRESOLVED or missing(value):
            return text
        return value

    def substitute(match: re.Match[str]) -> str:
        value = _resolve_expression(match.group(1), resolve)
        if value is _UNRESOLVED or missing(value):
            return match.group(0)
        return to_text(value)

    return TEMPLATE.sub(substitute, text)


def interpolate(value: Any, resolve: Resolver, skip: frozenset[str] = frozenset()) -> Any:
    """Interpolate every string inside ``value``; top-level keys in ``skip`` stay raw."""
    if isinstance(value, str):
        return render(value, resolve)
    if isinstance(value, Mapping):
        return {
            k: (v if k in skip else interpolate(v, resolve)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, resolve) for v in value]
    return value
