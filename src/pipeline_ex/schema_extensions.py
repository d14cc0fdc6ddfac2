"""Checks a schema extension must pass before it is registered.

An extension is merged into the schema every workflow is validated against, so a broken one
used to pass ``plugins check`` and then break every ``validate``/``run`` with an internal
error that named no plugin.  Everything that can be known about a fragment is checked when
it is registered, and each problem is reported with its JSON pointer inside the extension:

- it is a valid Draft 2020-12 schema (every meta-schema violation, not only the first);
- each ``pattern`` and ``patternProperties`` key compiles and cannot backtrack
  exponentially (``pipeline_ex.regex_safety``);
- each ``$ref``/``$dynamicRef`` resolves, against the compiled schema (a fragment may point
  at the base's ``#/$defs/...``) and the JSON Schema meta-schemas shipped with
  ``jsonschema``; nothing is ever retrieved, so a remote reference is refused too.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin

from pipeline_ex.regex_safety import unsafe_reason

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError as JSONSchemaValidationError
    from referencing import Registry

#: Keywords whose values are data, not schemas: never searched for patterns or references.
DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
REFERENCE_KEYWORDS = ("$ref", "$dynamicRef")


@functools.cache
def _meta_validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


Path = Sequence[str | int]


def pointer(path: Path) -> str:
    """An RFC 6901 JSON pointer; the whole document is shown as ``/`` (not ``""``)."""
    text = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return text or "/"


def _describe(err: JSONSchemaValidationError) -> str:
    """The meta-schema's message, with the most relevant cause of an ``anyOf`` failure
    (``'integr' is not one of ['array', 'boolean', ...]``) instead of only its summary."""
    if err.context:
        causes = [c for c in err.context if c.validator == "enum"] or list(err.context)
        return f"{err.message} ({causes[0].message})"
    return err.message


#: The fragments pipeline-ex's own built-in plugins contribute, as canonical JSON (sorted
#: keys, no spaces).  Each is checked against the meta-schema by the test suite
#: (``tests/registries/test_meta_schema_verdict.py``, with jsonschema and jsonschema-rs), so
#: the same check at every start-up only cost the import of jsonschema-rs (with ``email``,
#: ``socket`` and ``decimal``): a tenth of a ``pipeline-ex steps``.  Only these exact texts
#: pass unchecked; any other fragment, or a changed built-in, is checked as before.
SHIPPED_VALID = frozenset(
    {
        '{"$defs":{"step":{"properties":{"output_schema":'
        '{"$ref":"https://json-schema.org/draft/2020-12/schema","type":"object"}}}}}',
    }
)


def canonical_text(fragment: Mapping[str, Any]) -> str | None:
    """``fragment`` as canonical JSON, or None if it is not plain JSON (see ``schema_rs``)."""
    from pipeline_ex.schema_rs import is_plain_json

    if not is_plain_json(fragment):
        return None
    try:
        return json.dumps(fragment, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (ValueError, RecursionError):
        return None


def meta_schema_problems(fragment: Mapping[str, Any]) -> list[str]:
    """Every way ``fragment`` breaks the Draft 2020-12 meta-schema, ``at POINTER: why``."""
    if canonical_text(fragment) in SHIPPED_VALID or _passes_meta_schema(fragment):
        return []
    errors = sorted(
        _meta_validator().iter_errors(dict(fragment)), key=lambda e: [str(p) for p in e.path]
    )
    return [f"at {pointer(list(err.absolute_path))}: {_describe(err)}" for err in errors]


def _passes_meta_schema(fragment: Mapping[str, Any]) -> bool:
    """jsonschema-rs's verdict, where it is known to equal jsonschema's (every fragment is
    checked at registration, built-in plugins' too, and jsonschema's import alone was a
    quarter of a ``pipeline-ex steps``).  jsonschema-rs does not check the meta-schema's
    ``format: regex``, which jsonschema's format checker does with Python's ``re`` (the
    other formats it knows do not occur in the meta-schema): so every pattern must also
    compile in Python.  False means "ask jsonschema", which writes the errors."""
    from pipeline_ex.schema_rs import is_plain_json

    if not is_plain_json(fragment):
        return False
    for _, node in _schema_nodes(fragment):
        found = [node.get("pattern")]
        if isinstance(node.get("patternProperties"), Mapping):
            found.extend(node["patternProperties"])
        for pattern in found:
            if isinstance(pattern, str):
                try:
                    re.compile(pattern)
                except (re.error, RecursionError, OverflowError):
                    return False
    return bool(_fast_meta_validator().is_valid(fragment))


@functools.cache
def _fast_meta_validator() -> jsonschema_rs.Validator:
    """The Draft 2020-12 meta-schema (bundled with jsonschema-rs) applied to a fragment as
    an instance, as jsonschema does: the fragment's own ``$schema`` is data here, never a
    document to fetch (``jsonschema_rs.meta.is_valid`` would try to retrieve an unknown
    one), and the retriever refuses anything the bundle lacks."""
    from pipeline_ex.schema_rs import compile_validator

    return compile_validator({"$ref": "https://json-schema.org/draft/2020-12/schema"})


def _schema_nodes(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[Path, Any]]:
    """Every mapping in a fragment that may be a schema, with its path (data values skipped)."""
    if isinstance(node, Mapping):
        yield path, node
        for key, value in node.items():
            if key not in DATA_KEYWORDS:
                yield from _schema_nodes(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schema_nodes(value, (*path, index))


def patterns(fragment: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """Every regular expression of a fragment (``pattern`` values and ``patternProperties``
    keys) with its path, data keywords skipped."""
    found: list[tuple[Path, str]] = []
    for path, node in _schema_nodes(fragment):
        if isinstance(node.get("pattern"), str):
            found.append(((*path, "pattern"), node["pattern"]))
        if isinstance(node.get("patternProperties"), Mapping):
            found.extend(
                ((*path, "patternProperties", key), key)
                for key in node["patternProperties"]
                if isinstance(key, str)
            )
    return found


def pattern_problems(fragment: Mapping[str, Any]) -> list[str]:
    """Patterns that do not compile or could take exponential time on a short string.

    Verdicts run on jsonschema-rs, whose engine does not backtrack on such patterns, but
    an invalid document is explained by jsonschema, on Python's backtracking ``re``: the
    check still guards that path (and plugin config schemas, validated by jsonschema)."""
    problems = []
    for where, pattern in patterns(fragment):
        reason = unsafe_reason(pattern)
        if reason is not None:
            problems.append(f"at {pointer(where)}: pattern {pattern!r}: {reason}")
    return problems


def references(fragment: Mapping[str, Any], base: str = "") -> Iterator[tuple[Path, str, str]]:
    """``(path to the keyword, keyword, absolute target URI)`` of each reference, with
    ``$id`` changes of base honoured."""
    bases: dict[tuple[str | int, ...], str] = {}
    for path, node in _schema_nodes(fragment):
        here = base
        for depth in range(len(path), -1, -1):
            if tuple(path[:depth]) in bases:
                here = bases[tuple(path[:depth])]
                break
        if isinstance(node.get("$id"), str):
            here = urljoin(here, node["$id"])
            bases[tuple(path)] = here
        for keyword in REFERENCE_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str):
                yield (*path, keyword), keyword, urljoin(here, ref)


def reference_problems(fragment: Mapping[str, Any], compiled: Mapping[str, Any]) -> list[str]:
    """References in ``fragment`` that do not resolve within ``compiled`` (the merged schema
    the fragment is part of) or the bundled meta-schemas; nothing is fetched."""
    declared = compiled.get("$id")
    root = declared if isinstance(declared, str) else ""
    found = list(references(fragment, root))
    if not found:
        return []  # the common case: no registry to build
    if all(
        keyword == "$ref" and _plainly_resolves(target, root, compiled)
        for _, keyword, target in found
    ):
        return []  # no registry either: loading the meta-schemas costs ~10 ms
    from jsonschema_specifications import REGISTRY as META_SCHEMAS  # type: ignore[import-untyped]
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    registry: Registry[Any] = META_SCHEMAS.with_resource(
        root, DRAFT202012.create_resource(dict(compiled))
    ).crawl()
    resolver = registry.resolver(base_uri=root)
    problems = []
    for path, keyword, target in found:
        ref = _get(fragment, path)
        document, _ = urldefrag(target)
        if document and document != root and document not in registry:
            problems.append(
                f"at {pointer(path)}: {keyword} {ref!r} points outside the workflow schema "
                f"({document}); remote references are never retrieved"
            )
            continue
        try:
            resolver.lookup(target)
        except Unresolvable as exc:
            problems.append(
                f"at {pointer(path)}: {keyword} {ref!r} does not resolve in the workflow "
                f"schema ({type(exc).__name__})"
            )
    return problems


#: The Draft 2020-12 meta-schema: bundled with jsonschema and jsonschema-rs alike.
_META_SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def _plainly_resolves(target: str, root: str, compiled: Mapping[str, Any]) -> bool:
    """Whether ``target`` is the Draft 2020-12 meta-schema itself, or a plain JSON pointer
    into ``compiled`` that reaches a value without passing a ``$id`` (which would start
    another resource).  Then the registry would resolve it too; anything else (anchors,
    percent-escapes, other meta-schemas, embedded resources) is left to the registry."""
    document, fragment = urldefrag(target)
    if document == _META_SCHEMA_URI:
        return fragment == ""
    if document != root or not fragment.startswith("/") or "%" in fragment:
        return False
    node: Any = compiled
    for token in fragment[1:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isascii() and key.isdigit() and key == str(int(key)):
            if int(key) >= len(node):
                return False
            node = node[int(key)]
        else:
            return False
        if isinstance(node, Mapping) and "$id" in node:
            return False
    return True


def _get(node: Any, path: Path) -> Any:
    for key in path:
        node = node[key]
    return node
