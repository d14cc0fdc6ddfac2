"""JSON Schema validation on jsonschema-rs, with jsonschema's error messages.

jsonschema (pure Python) cost ~50 us per workflow step; jsonschema-rs decides the same
question ~200x faster.  Three things keep the switch invisible to users:

- **Nothing is fetched.**  jsonschema-rs retrieves ``http(s)`` references by default; every
  validator here is built with :func:`refuse_retrieval` as its retriever, so a reference
  outside the schema (and outside the JSON Schema meta-schemas jsonschema-rs bundles) is a
  build error, never a request.
- **Same verdict.**  jsonschema-rs sees JSON values: it turns ``nan``/``inf`` into ``null``
  and a tuple into an array, and refuses dates, bytes, sets and non-text keys, where
  jsonschema judges the Python value as it is.  Only data that is plain JSON
  (:func:`is_plain_json`) is decided here; anything else goes to jsonschema.
- **Same errors.**  For the keywords listed in ``_MESSAGES`` an error is rebuilt with
  jsonschema's own message, from the keyword's value in the schema and the offending value
  in the document (not jsonschema-rs's JSON-rendered copies), so paths and texts match the
  jsonschema path exactly (the equivalence tests check this over the corpus and the fuzz
  generators).  Any other error (``anyOf``/``oneOf``, whose jsonschema context gives the
  better explanation; ``not``, ``contains``, ``unevaluated*``; an error inside another
  resource, such as the meta-schema) makes :func:`violations` return ``None`` and the
  caller explains the document with jsonschema, which is only ever imported for a
  document already known to be invalid.

Patterns run on Rust's ``regex`` engine (through ``fancy-regex``, which only backtracks for
look-around and back-references, and then within a limit), so the verdict cannot be
stalled by a catastrophic pattern.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag

if TYPE_CHECKING:
    import jsonschema_rs

PathKey = tuple[str | int, ...]

#: Integers jsonschema-rs holds exactly (a JSON number beyond them is judged by jsonschema).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class RetrievalRefused(ValueError):
    """Raised by :func:`refuse_retrieval`; jsonschema-rs reports it as a build error."""


def refuse_retrieval(uri: str) -> Any:
    """The retriever of every validator: a reference that would need fetching is refused."""
    raise RetrievalRefused(f"{uri} is outside the schema; remote references are never retrieved")


def compile_validator(schema: Mapping[str, Any] | bool) -> jsonschema_rs.Validator:
    """A Draft 2020-12 validator that never fetches (formats are annotations, as in
    jsonschema without a format checker).  Raises ``jsonschema_rs.ValidationError`` when the
    schema is invalid or a reference does not resolve locally."""
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(
        dict(schema) if isinstance(schema, Mapping) else schema,
        retriever=refuse_retrieval,
        validate_formats=False,
    )


def pattern_problems(found: Iterable[tuple[Sequence[str | int], str]]) -> list[str]:
    """Patterns jsonschema-rs cannot compile (its dialect is ECMA 262's, not Python's: a
    named group ``(?P<n>...)`` is refused), ``at POINTER: why`` each."""
    problems = []
    for path, pattern in found:
        try:
            compile_validator({"pattern": pattern})
        except build_error() as exc:
            detail = (str(exc).splitlines() or ["?"])[0]
            where = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
            problems.append(f"at {where or '/'}: pattern {pattern!r} does not compile ({detail})")
    return problems


def build_error() -> type[Exception]:
    """The exception type jsonschema-rs raises for an invalid schema or a dangling ``$ref``."""
    import jsonschema_rs

    return jsonschema_rs.ValidationError


def is_plain_json(value: Any) -> bool:
    """Whether ``value`` holds only what JSON holds, as these exact types: dicts with text
    keys, lists, text, integers in 64 bits, finite floats, booleans and ``None``.

    Only then do jsonschema-rs and jsonschema see the same value.
    """
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        current = pop()
        kind = type(current)
        if kind is str or kind is bool or current is None:
            continue
        if kind is int:
            if not _INT_MIN <= current <= _INT_MAX:
                return False  # jsonschema-rs holds 64-bit integers exactly, no more
            continue
        if kind is dict:
            for key in current:
                if type(key) is not str:
                    return False
            extend(current.values())
        elif kind is list:
            extend(current)
        elif kind is float:
            if not math.isfinite(current):
                return False
        else:
            return False
    return True


@dataclass(frozen=True)
class Violation:
    """One schema error, with the attributes of ``jsonschema.ValidationError`` that error
    reporting reads, so either validator's errors go through the same formatting.

    ``location`` is the JSON pointer of the failing keyword inside the validated schema
    (through ``$ref``s: where the keyword is written), which names the extension behind it.
    """

    absolute_path: PathKey
    validator: str
    validator_value: Any
    instance: Any
    message: str
    location: PathKey


def _enough(limit: Any, one: str, many: str) -> str:
    return one if limit == 1 else many


def _at_most(limit: Any, none: str, many: str) -> str:
    return none if limit == 0 else many


def _extras(names: Sequence[Any]) -> str:
    ordered = sorted(names, key=str)
    verb = "was" if len(ordered) == 1 else "were"
    return f"{', '.join(repr(n) for n in ordered)} {verb} unexpected"


def _additional(instance: Any, schema: Mapping[str, Any]) -> str | None:
    if "patternProperties" in schema or not isinstance(instance, Mapping):
        return None  # jsonschema words this one differently: let it explain
    properties = schema.get("properties", {})
    extras = [k for k in instance if k not in properties]
    return f"Additional properties are not allowed ({_extras(extras)})"


#: keyword -> jsonschema's message for (keyword value, instance, the schema holding it),
#: written as jsonschema 4's ``_keywords`` words them (``None``: let jsonschema explain).
_MESSAGES: dict[str, Callable[[Any, Any, Mapping[str, Any]], str | None]] = {
    "type": lambda types, instance, _: (
        f"{instance!r} is not of type "
        + ", ".join(repr(t) for t in (types if isinstance(types, list) else [types]))
    ),
    "minLength": lambda n, instance, _: (
        f"{instance!r} {_enough(n, 'should be non-empty', 'is too short')}"
    ),
    "maxLength": lambda n, instance, _: (
        f"{instance!r} {_at_most(n, 'is expected to be empty', 'is too long')}"
    ),
    "minItems": lambda n, instance, _: (
        f"{instance!r} {_enough(n, 'should be non-empty', 'is too short')}"
    ),
    "maxItems": lambda n, instance, _: (
        f"{instance!r} {_at_most(n, 'is expected to be empty', 'is too long')}"
    ),
    "minProperties": lambda n, instance, _: (
        f"{instance!r} {_enough(n, 'should be non-empty', 'does not have enough properties')}"
    ),
    "maxProperties": lambda n, instance, _: (
        f"{instance!r} {_at_most(n, 'is expected to be empty', 'has too many properties')}"
    ),
    "minimum": lambda n, instance, _: f"{instance!r} is less than the minimum of {n!r}",
    "maximum": lambda n, instance, _: f"{instance!r} is greater than the maximum of {n!r}",
    "exclusiveMinimum": lambda n, instance, _: (
        f"{instance!r} is less than or equal to the minimum of {n!r}"
    ),
    "exclusiveMaximum": lambda n, instance, _: (
        f"{instance!r} is greater than or equal to the maximum of {n!r}"
    ),
    "multipleOf": lambda n, instance, _: f"{instance!r} is not a multiple of {n}",
    "enum": lambda options, instance, _: f"{instance!r} is not one of {options!r}",
    "const": lambda value, instance, _: f"{value!r} was expected",
    "uniqueItems": lambda _v, instance, _: f"{instance!r} has non-unique elements",
    "pattern": lambda pattern, instance, _: f"{instance!r} does not match {pattern!r}",
    "additionalProperties": lambda _v, instance, schema: _additional(instance, schema),
}


def _resolve(root: Any, path: Sequence[str | int]) -> tuple[bool, Any]:
    node = root
    for part in path:
        inside = (
            part in node
            if isinstance(node, Mapping)
            else isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if not inside:
            return False, None
        node = node[part]
    return True, node


def violations(
    validator: jsonschema_rs.Validator, schema: Mapping[str, Any], data: Any
) -> list[Violation] | None:
    """Every error of ``data`` (plain JSON) against ``schema`` as jsonschema would word it,
    or ``None`` when one of them is of a kind jsonschema explains better (see the module
    docstring)."""
    declared = schema.get("$id")
    root = urldefrag(declared)[0] if isinstance(declared, str) else ""
    found: list[Violation] = []
    for err in validator.iter_errors(data):
        location = err.absolute_keyword_location
        if (urldefrag(location)[0] if location else "") != root:
            return None  # inside another resource (the meta-schema, an embedded $id)
        where = tuple(err.schema_path)
        keyword = where[-1] if where else None
        if keyword == "required" and err.kind.name == "required":
            name = err.kind.property  # type: ignore[attr-defined]
            ok, instance = _resolve(data, err.instance_path)
            if not ok:
                return None
            if isinstance(instance, Mapping) and name in instance:
                # jsonschema-rs 0.61 also reports a present property as missing when
                # ``additionalProperties`` refuses it; jsonschema (rightly) does not.
                continue
            found.append(
                Violation(
                    tuple(err.instance_path),
                    "required",
                    _resolve(schema, where)[1],
                    instance,
                    f"{name!r} is a required property",
                    (*where, name),
                )
            )
            continue
        message = _MESSAGES.get(keyword) if isinstance(keyword, str) else None
        kind = err.kind.name
        if kind == "falseSchema" and keyword == "additionalProperties":
            kind = keyword  # (``false`` with no ``properties``: one error at the object)
        if message is None or kind != keyword:
            return None
        has_value, value = _resolve(schema, where)
        ok, holder = _resolve(schema, where[:-1])
        has_instance, instance = _resolve(data, err.instance_path)
        if not (has_value and ok and has_instance and isinstance(holder, Mapping)):
            return None
        text = message(value, instance, holder)
        if text is None:
            return None
        found.append(Violation(tuple(err.instance_path), keyword, value, instance, text, where))
    return found
