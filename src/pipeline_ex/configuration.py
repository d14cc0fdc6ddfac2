"""ConfigurationSystem: the workflow JSON Schema, the extensions plugins add, validation.

The base schema describes pipeline_ex's workflow format.  Plugins contribute named
extensions, fragments over the whole document (``{"properties": {"workflow": ...}}``) that
are deep-merged into the base.  The compiled schema and its validator are cached per
snapshot of the extension set, so validation costs one ``iter_errors`` pass.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Iterable, Mapping
from functools import cached_property
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as JSONSchemaValidationError
from referencing.exceptions import Unresolvable

from pipeline_ex.documents import Document, PathKey
from pipeline_ex.errors import (
    ComponentConflictError,
    Problem,
    SchemaExtensionConflict,
    SchemaValidationError,
)
from pipeline_ex.registries.snapshot import SnapshotRegistry
from pipeline_ex.results_json import ResultEncodingError, jsonable
from pipeline_ex.schema_refs import describe_remote, local_validator, remote_refs


@functools.cache
def _shipped_schema() -> dict[str, Any]:
    """The shipped base schema, read once per process and never mutated (merges copy)."""
    text = resources.files("pipeline_ex.schemas").joinpath("workflow.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def base_workflow_schema() -> dict[str, Any]:
    """A fresh copy of the base workflow schema shipped with the package."""
    return copy.deepcopy(_shipped_schema())


#: Keywords whose values combine subschemas; two extensions that both set one at the same
#: place are combined under ``allOf`` (both must hold) instead of clashing.
COMPOSITION_KEYWORDS = ("anyOf", "oneOf", "not", "if", "then", "else")
CONDITIONAL_KEYWORDS = ("if", "then", "else")


def _append_all_of(base: dict[str, Any], subschemas: list[Any]) -> None:
    all_of = base.setdefault("allOf", [])
    for subschema in subschemas:
        if subschema not in all_of:
            all_of.append(copy.deepcopy(subschema))


def _split_composition(base: Mapping[str, Any], fragment: Mapping[str, Any]) -> dict[str, Any]:
    """The fragment's composition keywords that differ from what ``base`` has there.

    ``if``/``then``/``else`` travel together: a conditional is only meaningful whole.
    """
    moved = {
        k: fragment[k]
        for k in COMPOSITION_KEYWORDS
        if k in fragment and k in base and base[k] != fragment[k]
    }
    if any(k in moved for k in CONDITIONAL_KEYWORDS):
        moved.update({k: fragment[k] for k in CONDITIONAL_KEYWORDS if k in fragment})
    return moved


def deep_merge(
    base: dict[str, Any],
    fragment: Mapping[str, Any],
    *,
    here: str,
    owner: str,
    owners: dict[str, str],
) -> None:
    """Merge ``fragment`` into ``base`` in place.

    Mappings merge key by key, ``required`` lists are unioned, ``allOf`` lists are
    concatenated, and differing composition keywords (``anyOf``, ``oneOf``, ``not``,
    ``if``/``then``/``else``) are combined under ``allOf`` so both extensions' constraints
    hold; equal values are fine; any other clash raises ``SchemaExtensionConflict`` naming
    both contributors.  ``owners`` remembers which extension set each leaf, so the message
    can name the other party.
    """
    moved = _split_composition(base, fragment)
    if moved:
        _append_all_of(base, [moved])
    for key, value in fragment.items():
        path = f"{here}/{key}"
        if key in moved:
            continue
        if key == "allOf" and isinstance(value, list) and isinstance(base.get(key), list):
            _append_all_of(base, value)
        elif key not in base:
            base[key] = copy.deepcopy(value)
            owners[path] = owner
        elif isinstance(base[key], dict) and isinstance(value, Mapping):
            deep_merge(base[key], value, here=path, owner=owner, owners=owners)
        elif key == "required" and isinstance(base[key], list) and isinstance(value, list):
            base[key] = list(dict.fromkeys([*base[key], *value]))
        elif base[key] != value:
            # The most specific contributor of this path (its longest owned prefix).
            claims = [p for p in owners if path == p or path.startswith(p + "/")]
            other = owners[max(claims, key=len)] if claims else "the base schema"
            raise SchemaExtensionConflict(
                f"schema extension {owner!r} conflicts with {other!r} at {path or '/'}: "
                f"{json.dumps(base[key])[:80]} vs {json.dumps(value)[:80]}"
            )


_LOCAL_DEF = "#/$defs/"


def _local_refs(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_LOCAL_DEF):
            found.add(ref[len(_LOCAL_DEF) :])
        for value in node.values():
            _local_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _local_refs(value, found)
    return found


def inline_local_refs(schema: dict[str, Any], unroll: int = 1) -> dict[str, Any]:
    """The same schema with ``#/$defs/...`` references replaced by their definitions.

    jsonschema resolves a ``$ref`` on every instance it visits; for a workflow that is a
    few lookups per step and per prompt part, more than half the validation time.  Plain
    definitions are inlined everywhere; recursive ones (a loop's ``steps``) are unrolled
    ``unroll`` times, after which the ``$ref`` stays, so any depth still validates.
    """
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema
    graph = {name: _local_refs(body, set()) for name, body in defs.items()}

    def reaches(start: str, target: str, seen: frozenset[str]) -> bool:
        return any(
            nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt}))
            for nxt in graph.get(start, ())
        )

    recursive = {name for name in defs if reaches(name, name, frozenset())}

    def expand(node: Any, budget: dict[str, int]) -> Any:
        if isinstance(node, list):
            return [expand(value, budget) for value in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_LOCAL_DEF):
            name = ref[len(_LOCAL_DEF) :]
            left = budget.get(name, unroll) if name in recursive else 1
            if name in defs and left > 0:
                body = expand(defs[name], {**budget, name: left - 1})
                siblings = {k: expand(v, budget) for k, v in node.items() if k != "$ref"}
                if not siblings:
                    return body
                return {**siblings, "allOf": [body, *siblings.get("allOf", [])]}
        return {key: expand(value, budget) for key, value in node.items()}

    inlined: dict[str, Any] = {
        key: (value if key == "$defs" else expand(value, {})) for key, value in schema.items()
    }
    return inlined


class _CompiledSchema:
    """A merged schema and its validator, built once per extension snapshot.

    ``source`` is the snapshot dict it was built from; snapshots are never mutated, so
    identity tells whether the cache entry is still current.
    """

    def __init__(self, schema: dict[str, Any], source: Mapping[str, Any]) -> None:
        self.schema = schema
        self.source = source

    @cached_property
    def validator(self) -> Draft202012Validator:
        return Draft202012Validator(inline_local_refs(self.schema))


class ConfigurationSystem(SnapshotRegistry[dict[str, Any]]):
    """Named schema extensions (a registry like the others) plus the base schema."""

    kind = "schema extension"

    def __init__(self, base_schema: dict[str, Any] | None = None) -> None:
        super().__init__()
        if base_schema is None:
            # The shipped schema is checked by the test suite, not on every start-up
            # (check_schema costs ~10 ms, a third of a cold start with 100 plugins).
            self._base = _shipped_schema()
        else:
            Draft202012Validator.check_schema(base_schema)
            self._base = base_schema
        self._compiled: dict[tuple[str, ...], _CompiledSchema] = {}
        self._compile_lock = threading.Lock()

    @property
    def base_schema(self) -> dict[str, Any]:
        return copy.deepcopy(self._base)

    def register_extensions(
        self, extensions: Mapping[str, Mapping[str, Any]], owner: str, *, swap: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Add extensions atomically, after proving they are valid and merge cleanly."""
        for name, fragment in extensions.items():
            if not isinstance(fragment, Mapping):
                raise SchemaExtensionConflict(
                    f"schema extension {name!r} is not a mapping", code="extension_invalid"
                )
            try:
                Draft202012Validator.check_schema(dict(fragment))
            except SchemaError as exc:
                raise SchemaExtensionConflict(
                    f"schema extension {name!r} is not a valid JSON Schema: {exc.message}",
                    code="extension_invalid",
                ) from None
        current = {
            n: f for n, f in self.snapshot().items() if not (swap and self.owner(n) == owner)
        }
        clashing = [n for n in extensions if n in current and self.owner(n) != owner]
        if clashing:
            raise ComponentConflictError(
                f"schema extension(s) {clashing} already registered by "
                f"{', '.join(repr(self.owner(n)) for n in clashing)}"
            )
        # Prove the whole set still merges before publishing it.
        trial = {**current, **{n: dict(f) for n, f in extensions.items()}}
        self._merge(tuple(trial), trial)
        if swap:
            return self.replace_owner(owner, {n: dict(f) for n, f in extensions.items()})
        self.register_batch({n: dict(f) for n, f in extensions.items()}, owner)
        return {}

    def _after_write(self, touched: set[str]) -> None:
        self._compiled = {}

    def _merge(
        self, names: tuple[str, ...], source: Mapping[str, dict[str, Any]]
    ) -> dict[str, Any]:
        schema = copy.deepcopy(self._base)
        owners: dict[str, str] = {}
        for name in names:
            deep_merge(schema, source[name], here="", owner=name, owners=owners)
        return schema

    def _compiled_for(self, names: Iterable[str] | None) -> _CompiledSchema:
        items = self._items  # one snapshot for the whole call
        key = tuple(sorted(items)) if names is None else tuple(sorted(set(names)))
        compiled = self._compiled.get(key)
        if compiled is None or compiled.source is not items:
            for name in key:
                if name not in items:
                    raise self.missing_error(self.kind, name, items)
            with self._compile_lock:
                # Built from ``items``, not from whatever is current now: a write racing
                # with this call cannot pair one snapshot's key with another's schema.
                compiled = _CompiledSchema(self._merge(key, items), items)
                if self._items is items:
                    self._compiled[key] = compiled
        return compiled

    def compiled_schema(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The base schema with the named extensions (all registered ones by default)."""
        return copy.deepcopy(self._compiled_for(names).schema)

    def problems(self, document: Document, names: Iterable[str] | None = None) -> list[Problem]:
        validator = self._compiled_for(names).validator
        errors = sorted(validator.iter_errors(document.data), key=_error_sort_key)
        return [_to_problem(document, err) for err in _leaf_errors(errors)]

    @staticmethod
    def output_problems(schema: Mapping[str, Any], value: Any) -> list[str]:
        """Where ``value`` breaks ``schema`` (a step's ``output_schema``), one line each.

        The schema comes from an untrusted workflow: a reference outside it is refused
        before validation and the validator has no retrieval (``schema_refs``), so nothing
        is ever fetched; a value nested too deeply to check is a problem, not a crash.
        """

        def where(path: Iterable[Any]) -> str:
            return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)

        try:
            Draft202012Validator.check_schema(dict(schema))
        except SchemaError as exc:
            return [f"output_schema is not a valid JSON Schema: {exc.message}"]
        remote = remote_refs(schema)
        if remote:
            return [f"output_schema{where(path)}: {describe_remote(ref)}" for path, ref in remote]
        validator = local_validator(schema)
        problems = []
        try:
            # Checked as JSON sees it (text keys, no NaN), as a reader of the output would.
            instance = jsonable(value)
            for err in sorted(validator.iter_errors(instance), key=_error_sort_key):
                problems.append(f"output{where(err.absolute_path)}: {_message(err)}")
        except Unresolvable as exc:
            return [f"output_schema: unresolvable reference {str(exc)[:120]}"]
        except (RecursionError, ResultEncodingError):
            return ["output is nested too deeply to check against output_schema"]
        except Exception as exc:  # e.g. a "pattern" that is not a regular expression
            return [f"output_schema could not be applied: {type(exc).__name__}: {exc}"[:300]]
        return problems

    def validate(self, document: Document | Any, names: Iterable[str] | None = None) -> None:
        """Raise ``SchemaValidationError`` listing every problem, or return quietly."""
        doc = document if isinstance(document, Document) else Document(document)
        problems = self.problems(doc, names)
        if problems:
            raise SchemaValidationError(problems)


def _error_sort_key(err: JSONSchemaValidationError) -> tuple[str, ...]:
    return tuple(str(p) for p in err.absolute_path)


def _leaf_errors(
    errors: list[JSONSchemaValidationError],
) -> list[JSONSchemaValidationError]:
    """Replace ``allOf``/``anyOf`` wrappers by their most specific causes."""
    out: list[JSONSchemaValidationError] = []
    for err in errors:
        if err.context and err.validator in ("allOf",):
            out.extend(_leaf_errors(sorted(err.context, key=_error_sort_key)))
        else:
            out.append(err)
    return out


_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)


def _json_type(value: Any) -> str:
    return next(
        (name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message(err: JSONSchemaValidationError) -> str:
    """jsonschema's message, with the offending value shortened so a long prompt does not
    drown the point; a type mismatch says what was expected and what was found."""
    if err.validator == "type":
        expected = err.validator_value
        wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
        return f"expected {wanted}, found {_json_type(err.instance)} {_short(err.instance)}"
    full = repr(err.instance)
    if len(full) > 80 and full in err.message:
        return err.message.replace(full, _short(err.instance))
    return err.message


def _to_problem(document: Document, err: JSONSchemaValidationError) -> Problem:
    path: PathKey = tuple(err.absolute_path)
    return document.problem(path, _message(err))
