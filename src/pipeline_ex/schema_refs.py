"""JSON Schema references that never leave the machine.

A step's ``output_schema`` comes from a workflow file, which is untrusted: with jsonschema's
default (deprecated) remote retrieval, ``{"$ref": "http://host/x?k=..."}`` made the run
fetch a URL, sending whatever the URL carried to any host and hanging on a slow one.  Here
a schema may refer only to itself (``#/$defs/x``, an embedded ``$id``) or to the JSON Schema
meta-schemas that ship with ``jsonschema``; anything else is refused before validation
(:func:`remote_refs`), and validation itself runs against a ``referencing`` registry that
cannot retrieve (:data:`NO_RETRIEVAL`), so a reference that slips past the check is an
unresolvable reference, not a request.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from referencing import Registry

    #: A registry with no resources and no retrieval (jsonschema adds the meta-schemas).
    NO_RETRIEVAL: Registry[Any]


def __getattr__(name: str) -> object:
    # jsonschema and referencing are imported when a schema is first checked, not with
    # the modules that import this one (every Runtime start).
    if name == "NO_RETRIEVAL":
        return _no_retrieval()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _no_retrieval() -> Registry[Any]:
    from referencing import Registry

    return Registry()


@functools.cache
def _meta_schema_uris() -> frozenset[str]:
    from jsonschema_specifications import REGISTRY  # type: ignore[import-untyped]

    return frozenset(REGISTRY)


PathKey = tuple[str | int, ...]

_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = (
    "not",
    "if",
    "then",
    "else",
    "items",
    "additionalItems",
    "contains",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")


def _subschemas(schema: Mapping[str, Any]) -> Iterator[tuple[PathKey, Any]]:
    """The subschemas of ``schema`` with their path: keywords whose values are schemas, so a
    property *named* ``$ref`` or a ``const`` holding one is data, not a reference."""
    for key in _SCHEMA_VALUES:
        if key in schema:
            yield (key,), schema[key]
    for key in _SCHEMA_LISTS:
        value = schema.get(key)
        if isinstance(value, list):
            yield from (((key, i), item) for i, item in enumerate(value))
    for key in _SCHEMA_MAPS:
        value = schema.get(key)
        if isinstance(value, Mapping):
            yield from (((key, str(name)), item) for name, item in value.items())
    dependencies = schema.get("dependencies")  # draft 7's mixed form: schemas or name lists
    if isinstance(dependencies, Mapping):
        for name, item in dependencies.items():
            if isinstance(item, Mapping):
                yield ("dependencies", str(name)), item


def _ids(schema: Any) -> set[str]:
    """Every absolute ``$id`` declared inside ``schema`` (the resources it embeds)."""
    found: set[str] = set()
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, base = stack.pop()
        if not isinstance(node, Mapping):
            continue
        if isinstance(node.get("$id"), str):
            base = urldefrag(urljoin(base, node["$id"]))[0]
            found.add(base)
        stack.extend((child, base) for _, child in _subschemas(node))
    return found


def remote_refs(schema: Any) -> list[tuple[PathKey, str]]:
    """``(path, reference)`` for each reference that points outside ``schema`` and outside
    the bundled meta-schemas, in document order."""
    if not isinstance(schema, Mapping):
        return []
    known = _ids(schema) | {""}  # "": the schema itself when it declares no $id
    found: list[tuple[PathKey, str]] = []
    stack: list[tuple[Any, PathKey, str]] = [(schema, (), "")]
    while stack:
        node, path, base = stack.pop()
        if not isinstance(node, Mapping):
            continue
        if isinstance(node.get("$id"), str):
            base = urldefrag(urljoin(base, node["$id"]))[0]
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue
            target = urldefrag(urljoin(base, ref))[0]
            if target not in known and target not in _meta_schema_uris():
                found.append(((*path, keyword), ref))
        children = list(_subschemas(node))
        stack.extend((child, (*path, *sub), base) for sub, child in reversed(children))
    return found


def describe_remote(ref: str) -> str:
    return (
        f"$ref {ref[:120]!r} points outside the schema; only references inside it (such as "
        "'#/$defs/x') or to the JSON Schema meta-schemas are allowed, nothing is fetched"
    )


def local_validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A Draft 2020-12 validator for ``schema`` that can never retrieve a reference."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(dict(schema), registry=_no_retrieval())
