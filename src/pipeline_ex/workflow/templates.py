"""``{{...}}`` interpolation in step definitions.

A string that is exactly one template yields the raw value (so ``data_source:
"{{steps.list.items}}"`` gives a list); templates inside longer text are rendered as text,
mappings and lists as JSON.  A template that does not resolve is left as written, as
pipeline_ex does, so ``{{timestamp}}`` in a corpus file survives to the output.

Templates are found by a linear scan, not a backtracking regular expression, so a string
of any shape (``"{{" + " " * 10**6``, ``"{{" * 10**6 + "}}"``) is scanned in time
proportional to its length.  (Evaluating what the scan finds costs more per template:
each expression is at most ``MAX_EXPRESSION_LENGTH`` characters and parsed once.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipeline_ex.workflow.expressions import ExpressionError, evaluate, missing

Resolver = Callable[[str], Any]
#: Called with each value a template produces; raises to stop (a size budget).
Charge = Callable[[Any], None]
OPEN, CLOSE = "{{", "}}"


def find_templates(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(start, end, expression)`` for each ``{{ expression }}`` in ``text``.

    An expression never contains ``{{`` or ``}}``: ``"{{a}}-{{b}}"`` is two templates, and
    in ``"{{ x {{y}}"`` only ``{{y}}`` is one.  Empty ``{{ }}`` is not a template.

    Linear in ``len(text)``: each character is examined a bounded number of times.  When
    an inner ``{{`` restarts the match, the closing ``}}`` already found is still the first
    one after it (nothing between them was a ``}}``), so it is reused instead of searched
    for again; searching again from each inner ``{{`` made ``"{{" * n + "}}"`` quadratic.
    """
    position = 0
    end = -1  # the first "}}" at or after the current start + 2, once known
    while True:
        start = text.find(OPEN, position)
        if start < 0:
            return
        if end < start + 2:
            end = text.find(CLOSE, start + 2)
            if end < 0:
                return
        inner_open = text.find(OPEN, start + 2, end)
        if inner_open >= 0:
            position = inner_open
            continue
        expression = text[start + 2 : end].strip()
        if expression:
            yield start, end + 2, expression
        position = end + 2


def whole_template(text: str) -> str | None:
    """The expression when ``text`` (ignoring surrounding blanks) is exactly one template."""
    stripped = text.strip()
    if not (stripped.startswith(OPEN) and stripped.endswith(CLOSE)):
        return None
    for start, end, expression in find_templates(stripped):
        return expression if start == 0 and end == len(stripped) else None
    return None


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


_UNRESOLVED = object()


def _resolve_expression(expression: str, resolve: Resolver) -> Any:
    try:
        value = evaluate(expression, resolve)
    except ExpressionError:
        return _UNRESOLVED
    return _UNRESOLVED if missing(value) else value


def render(text: str, resolve: Resolver, charge: Charge | None = None) -> Any:
    """Interpolate one string; ``charge`` sees each value as it is produced (and may raise
    to stop a rendering that grows too large before it is built)."""
    if OPEN not in text:
        return text
    whole = whole_template(text)
    if whole is not None:
        value = _resolve_expression(whole, resolve)
        if value is _UNRESOLVED:
            return text
        if charge is not None:
            charge(value)
        return value
    pieces: list[str] = []
    position = 0
    for start, end, expression in find_templates(text):
        value = _resolve_expression(expression, resolve)
        piece = text[start:end] if value is _UNRESOLVED else to_text(value)
        if charge is not None:
            charge(piece)
        pieces.append(text[position:start])
        pieces.append(piece)
        position = end
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


def interpolate(
    value: Any,
    resolve: Resolver,
    skip: frozenset[str] = frozenset(),
    charge: Charge | None = None,
) -> Any:
    """Interpolate every string inside ``value``; top-level keys in ``skip`` stay raw.

    Runs over every value of every step, so the exact types of parsed data are told
    apart first (an ``isinstance`` against an ABC costs ~10x a type comparison), and the
    plain values of a mapping or list (text without ``{{``, numbers) are copied without a
    call per value: a step without templates costs one call per container in it."""
    kind = type(value)
    if kind is dict:
        out: dict[Any, Any] = {}
        for k, v in value.items():
            item = type(v)
            if k in skip or item is int or item is float or item is bool or v is None:
                out[k] = v
            elif item is str:
                out[k] = render(v, resolve, charge) if OPEN in v else v
            else:
                out[k] = interpolate(v, resolve, charge=charge)
        return out
    if kind is list:
        items: list[Any] = []
        for v in value:
            item = type(v)
            if item is str:
                items.append(render(v, resolve, charge) if OPEN in v else v)
            elif item is int or item is float or item is bool or v is None:
                items.append(v)
            else:
                items.append(interpolate(v, resolve, charge=charge))
        return items
    if kind is str:
        return render(value, resolve, charge)
    if kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, str):
        return render(value, resolve, charge)
    if isinstance(value, Mapping):
        return {
            k: (v if k in skip else interpolate(v, resolve, charge=charge))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, resolve, charge=charge) for v in value]
    return value
