"""jsonschema's verdict on a simple schema, reached without importing a schema engine.

A process that loads plugins checks its plugin config (and a directory plugin's
``plugin.yaml``) once, against fixed schemas built from a handful of keywords.  Importing
jsonschema-rs for that costs ~10 ms of a cold start (it brings ``email``, ``socket`` and
``decimal`` with it), where the check itself takes microseconds.  This module compiles such
a schema into plain Python closures that apply those keywords exactly as jsonschema 4's
``Draft202012Validator`` does, and answers only when it is sure:

- a schema with any keyword outside the supported list (``$ref``, ``const``, ``format`` ...
  beyond annotations) is not compiled at all (:func:`compile_check` returns ``None``);
- a value it would have to judge that is not exactly a JSON type (``dict``, ``list``,
  ``str``, ``bool``, ``int``, ``float``, ``None``; a subclass, a date, a set) makes the
  verdict ``None`` ("ask the engine");
- patterns run on Python's ``re`` with ``re.search``, as jsonschema runs them.

A ``None`` sends the document down the usual path (jsonschema-rs, then jsonschema for the
errors); a ``False`` skips jsonschema-rs and goes to jsonschema for the errors, so every
error message and path is still jsonschema's own.  A property test compares the verdicts
with jsonschema's over generated documents, valid and invalid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

#: A compiled (sub)schema: the value and its JSON kind -> does it pass.
_Check = Callable[[Any, str], bool]
#: A compiled schema as callers use it: the value -> does it pass.
Check = Callable[[Any], bool]


class Undecided(Exception):
    """A value this module cannot judge exactly as jsonschema would."""


class _Unsupported(Exception):
    """A schema using a keyword (or a keyword value) this module does not apply."""


_KINDS: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}
_TYPE_NAMES = frozenset(_KINDS.values())

#: Keywords jsonschema does not apply to the instance (without a format checker).
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
    }
)


def kind_of(value: Any) -> str:
    """The JSON type of ``value`` by its exact Python type; anything else is undecided."""
    try:
        return _KINDS[type(value)]
    except KeyError:
        raise Undecided(type(value).__name__) from None


def compile_check(schema: Any) -> Check | None:
    """A function giving jsonschema's verdict on a value (raising :class:`Undecided` when
    it cannot), or ``None`` when ``schema`` uses anything this module does not apply."""
    try:
        inner = _compile(schema)
    except _Unsupported:
        return None

    def check(value: Any) -> bool:
        return inner(value, kind_of(value))

    return check


def verdict(check: Check | None, value: Any) -> bool | None:
    """``check``'s verdict on ``value``, or ``None`` where only a schema engine can say."""
    if check is None:
        return None
    try:
        return check(value)
    except (Undecided, RecursionError):
        return None


def _number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _same(one: Any, two: Any) -> bool:
    """jsonschema's ``_utils.equal`` for scalars: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if one is two:
        return True
    if type(one) is str or type(two) is str:
        return bool(one == two)
    if type(one) is bool or type(two) is bool:
        return False
    return bool(one == two)


def _all(checks: list[_Check]) -> _Check:
    if len(checks) == 1:
        return checks[0]

    # Loops rather than ``all(<generator>)`` here and below: a config entry runs a dozen
    # of these, and a generator per call was most of their cost.
    def run(value: Any, kind: str) -> bool:
        for check in checks:  # noqa: SIM110 (see _all)
            if not check(value, kind):
                return False
        return True

    return run


def _compile(schema: Any) -> _Check:
    if schema is True:
        return lambda value, kind: True
    if schema is False:
        return lambda value, kind: False
    if type(schema) is not dict:
        raise _Unsupported("not a schema")
    checks: list[_Check] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        builder = _KEYWORDS.get(keyword)
        if builder is None:
            raise _Unsupported(keyword)
        checks.append(builder(value, schema))
    return _all(checks) if checks else (lambda value, kind: True)


def _type(value: Any, schema: Mapping[str, Any]) -> _Check:
    names = [value] if type(value) is str else value
    if type(names) is not list or not names or not set(names) <= _TYPE_NAMES:
        raise _Unsupported("type")
    accepted = frozenset(names)
    integral_floats = "integer" in accepted  # Draft 6+: 1.0 is an integer

    def check(instance: Any, kind: str) -> bool:
        if kind in accepted:
            return True
        if kind == "integer":
            return "number" in accepted
        return kind == "number" and integral_floats and bool(instance.is_integer())

    return check


def _enum(value: Any, schema: Mapping[str, Any]) -> _Check:
    if type(value) is not list or any(kind_of_option(o) in ("object", "array") for o in value):
        raise _Unsupported("enum")
    options = list(value)

    def check(instance: Any, kind: str) -> bool:
        if kind in ("object", "array"):
            raise Undecided("enum of a container")
        return any(_same(option, instance) for option in options)

    return check


def kind_of_option(option: Any) -> str:
    try:
        return kind_of(option)
    except Undecided:
        raise _Unsupported("enum option") from None


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise _Unsupported("a count")
    return value


def _sized(kinds: str, at_least: bool) -> Callable[[Any, Mapping[str, Any]], _Check]:
    def build(value: Any, schema: Mapping[str, Any]) -> _Check:
        limit = _count(value)

        def check(instance: Any, kind: str) -> bool:
            if kind != kinds:
                return True
            size = len(instance)
            return size >= limit if at_least else size <= limit

        return check

    return build


def _bound(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Mapping[str, Any]], _Check]:
    """``minimum`` and its kin: ``compare(instance, limit)`` True means a failure, written
    as jsonschema writes each (``instance < minimum`` ...), so NaN fares the same."""

    def build(value: Any, schema: Mapping[str, Any]) -> _Check:
        if not _number(value):
            raise _Unsupported("a bound")

        def check(instance: Any, kind: str) -> bool:
            return not (kind in ("integer", "number") and compare(instance, value))

        return check

    return build


def _pattern(value: Any, schema: Mapping[str, Any]) -> _Check:
    if type(value) is not str:
        raise _Unsupported("pattern")
    try:
        search = re.compile(value).search
    except re.error:
        raise _Unsupported("pattern") from None
    return lambda instance, kind: kind != "string" or search(instance) is not None


def _required(value: Any, schema: Mapping[str, Any]) -> _Check:
    if type(value) is not list or any(type(name) is not str for name in value):
        raise _Unsupported("required")
    names = list(value)

    def check(instance: Any, kind: str) -> bool:
        if kind != "object":
            return True
        for name in names:  # noqa: SIM110 (see _all)
            if name not in instance:
                return False
        return True

    return check


def _properties(value: Any, schema: Mapping[str, Any]) -> _Check:
    if type(value) is not dict:
        raise _Unsupported("properties")
    compiled = [(name, _compile(sub)) for name, sub in value.items()]
    by_name = dict(compiled)

    def check(instance: Any, kind: str) -> bool:
        if kind != "object":
            return True
        if len(instance) < len(compiled):
            # Fewer keys than declared properties (a config entry: one key of twelve):
            # walk the instance.  The verdict is the same; only which failing property
            # is found first may differ, and any failure goes to jsonschema to explain.
            for name, item in instance.items():
                sub = by_name.get(name)
                if sub is not None and not sub(item, kind_of(item)):
                    return False
            return True
        for name, sub in compiled:
            if name in instance:
                item = instance[name]
                if not sub(item, kind_of(item)):
                    return False
        return True

    return check


def _additional(value: Any, schema: Mapping[str, Any]) -> _Check:
    if "patternProperties" in schema:
        raise _Unsupported("patternProperties")
    known = schema.get("properties", {})
    if type(known) is not dict:
        raise _Unsupported("properties")
    declared = frozenset(known)
    if value is False:
        return lambda instance, kind: kind != "object" or declared.issuperset(instance)
    sub = _compile(value)

    def check(instance: Any, kind: str) -> bool:
        if kind != "object":
            return True
        for name, item in instance.items():
            if name not in declared and not sub(item, kind_of(item)):
                return False
        return True

    return check


def _property_names(value: Any, schema: Mapping[str, Any]) -> _Check:
    sub = _compile(value)

    def check(instance: Any, kind: str) -> bool:
        if kind != "object":
            return True
        for name in instance:  # noqa: SIM110 (see _all)
            if not sub(name, kind_of(name)):
                return False
        return True

    return check


def _items(value: Any, schema: Mapping[str, Any]) -> _Check:
    if "prefixItems" in schema:
        raise _Unsupported("prefixItems")
    sub = _compile(value)

    def check(instance: Any, kind: str) -> bool:
        if kind != "array":
            return True
        for item in instance:  # noqa: SIM110 (see _all)
            if not sub(item, kind_of(item)):
                return False
        return True

    return check


def _subschemas(value: Any) -> list[_Check]:
    if type(value) is not list or not value:
        raise _Unsupported("a list of subschemas")
    return [_compile(sub) for sub in value]


def _one_of(value: Any, schema: Mapping[str, Any]) -> _Check:
    subs = _subschemas(value)

    def check(instance: Any, kind: str) -> bool:
        passed = 0
        for sub in subs:  # every branch, so an undecided one is never hidden
            if sub(instance, kind):
                passed += 1
        return passed == 1

    return check


def _any_of(value: Any, schema: Mapping[str, Any]) -> _Check:
    subs = _subschemas(value)
    # Every branch is judged, so an undecided one is never hidden by a passing one.
    return lambda instance, kind: any([sub(instance, kind) for sub in subs])


def _all_of(value: Any, schema: Mapping[str, Any]) -> _Check:
    subs = _subschemas(value)
    return lambda instance, kind: all([sub(instance, kind) for sub in subs])


def _not(value: Any, schema: Mapping[str, Any]) -> _Check:
    sub = _compile(value)
    return lambda instance, kind: not sub(instance, kind)


_KEYWORDS: dict[str, Callable[[Any, Mapping[str, Any]], _Check]] = {
    "type": _type,
    "enum": _enum,
    "minLength": _sized("string", at_least=True),
    "maxLength": _sized("string", at_least=False),
    "minItems": _sized("array", at_least=True),
    "maxItems": _sized("array", at_least=False),
    "minProperties": _sized("object", at_least=True),
    "maxProperties": _sized("object", at_least=False),
    "minimum": _bound(lambda instance, limit: instance < limit),
    "maximum": _bound(lambda instance, limit: instance > limit),
    "exclusiveMinimum": _bound(lambda instance, limit: instance <= limit),
    "exclusiveMaximum": _bound(lambda instance, limit: instance >= limit),
    "pattern": _pattern,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "propertyNames": _property_names,
    "items": _items,
    "oneOf": _one_of,
    "anyOf": _any_of,
    "allOf": _all_of,
    "not": _not,
}
