"""ConfigurationSystem: the workflow JSON Schema, the extensions plugins add, validation.

The base schema describes pipeline_ex's workflow format.  Plugins contribute named
extensions, fragments over the whole document (``{"properties": {"workflow": ...}}``) that
are deep-merged into the base.  The compiled schema and its validator are cached per
snapshot of the extension set.

Validation runs on jsonschema-rs (``schema_rs``): a valid document costs one pass in Rust.
jsonschema is imported only to explain a document already known to be invalid when
jsonschema-rs cannot word an error as well (``anyOf``/``oneOf`` and a few others), or to
judge data that is not plain JSON (a YAML date, ``.nan``), so the error messages, paths and
lines are the same as they were with jsonschema alone.

Importing this module is on every cold start that loads plugins, most of which never
validate a workflow: what only validation, extension registration or ``output_schema``
needs (``schema_rs``, ``schema_extensions``, ``schema_refs``, ``results_json``, ``copy``)
is imported inside the functions that use it.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pipeline_ex.documents import Document, PathKey
from pipeline_ex.errors import (
    ComponentConflictError,
    SchemaExtensionConflict,
    SchemaValidationError,
)
from pipeline_ex.registries.snapshot import SnapshotRegistry

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError as JSONSchemaValidationError

    from pipeline_ex import schema_rs
    from pipeline_ex.errors import Problem


@functools.cache
def _shipped_schema() -> dict[str, Any]:
    """The shipped base schema, read once per process and never mutated (merges copy).

    Read through the package's own loader, as ``pkgutil.get_data`` does (zip-safe like
    ``importlib.resources``, whose import with ``zipfile``, ``tempfile`` and ``shutil``
    cost every start-up more than reading the file does; ``pkgutil`` itself, with
    ``typing`` and ``functools.singledispatch`` behind it, costs more than the read too)."""
    import pipeline_ex

    loader = getattr(pipeline_ex.__spec__, "loader", None)
    get_data = getattr(loader, "get_data", None)
    package_file = getattr(pipeline_ex, "__file__", None)
    if get_data is None or not package_file:
        # a loader that cannot read resources: say so, not a TypeError
        raise RuntimeError("pipeline_ex's loader cannot read schemas/workflow.schema.json")
    data = get_data(os.path.join(os.path.dirname(package_file), "schemas", "workflow.schema.json"))
    schema: dict[str, Any] = json.loads(data)
    return schema


def base_workflow_schema() -> dict[str, Any]:
    """A fresh copy of the base workflow schema shipped with the package."""
    import copy

    return copy.deepcopy(_shipped_schema())


#: Keywords whose values combine subschemas; two extensions that both set one at the same
#: place are combined under ``allOf`` (both must hold) instead of clashing.
COMPOSITION_KEYWORDS = ("anyOf", "oneOf", "not", "if", "then", "else")
CONDITIONAL_KEYWORDS = ("if", "then", "else")


def _append_all_of(
    base: dict[str, Any], subschemas: list[Any], here: str, owner: str, owners: dict[str, str]
) -> None:
    import copy

    all_of = base.setdefault("allOf", [])
    for subschema in subschemas:
        if subschema not in all_of:
            owners[f"{here}/allOf/{len(all_of)}"] = owner
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
    can name the other party (and validation errors the extension that caused them): an
    added ``required`` name is owned at ``.../required/NAME``, an added ``allOf`` entry at
    ``.../allOf/INDEX``.
    """
    import copy

    moved = _split_composition(base, fragment)
    if moved:
        _append_all_of(base, [moved], here, owner, owners)
    for key, value in fragment.items():
        path = f"{here}/{key}"
        if key in moved:
            continue
        if key == "allOf" and isinstance(value, list) and isinstance(base.get(key), list):
            _append_all_of(base, value, here, owner, owners)
        elif key not in base:
            base[key] = copy.deepcopy(value)
            owners[path] = owner
        elif isinstance(base[key], dict) and isinstance(value, Mapping):
            deep_merge(base[key], value, here=path, owner=owner, owners=owners)
        elif key == "required" and isinstance(base[key], list) and isinstance(value, list):
            for item in value:
                if item not in base[key]:
                    owners[f"{path}/{item}"] = owner
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


def inline_local_refs(
    schema: dict[str, Any], unroll: int = 1, origins: dict[int, str] | None = None
) -> dict[str, Any]:
    """The same schema with ``#/$defs/...`` references replaced by their definitions.

    jsonschema resolves a ``$ref`` on every instance it visits; for a workflow that is a
    few lookups per step and per prompt part, more than half the validation time.  Plain
    definitions are inlined everywhere; recursive ones (a loop's ``steps``) are unrolled
    ``unroll`` times, after which the ``$ref`` stays, so any depth still validates.
    ``origins`` (when given) receives ``id(inlined copy) -> "/$defs/NAME"``, so an error's
    schema path can be traced back to the definition it came from.
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
                if origins is not None and isinstance(body, dict):
                    origins[id(body)] = f"/$defs/{name}"
                siblings = {k: expand(v, budget) for k, v in node.items() if k != "$ref"}
                if not siblings:
                    return body
                return {**siblings, "allOf": [body, *siblings.get("allOf", [])]}
        return {key: expand(value, budget) for key, value in node.items()}

    inlined: dict[str, Any] = {
        key: (value if key == "$defs" else expand(value, {})) for key, value in schema.items()
    }
    return inlined


def _refuse(name: str, what: str, problems: list[str]) -> None:
    if problems:
        raise SchemaExtensionConflict(
            f"schema extension {name!r} {what}: " + "; ".join(problems),
            code="extension_invalid",
        )


def merge_schemas(
    base: dict[str, Any],
    names: Iterable[str],
    source: Mapping[str, Mapping[str, Any]],
    owners: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of ``base`` with the named extensions merged in, in order; ``owners`` (when
    given) receives which extension set each merged path (see ``deep_merge``)."""
    import copy

    schema = copy.deepcopy(base)
    owners = {} if owners is None else owners
    for name in names:
        deep_merge(schema, source[name], here="", owner=name, owners=owners)
    return schema


class _CompiledSchema:
    """A merged schema and its validators, built once per extension snapshot.

    ``source`` is the snapshot dict it was built from; snapshots are never mutated, so
    identity tells whether the cache entry is still current.  ``fast`` (jsonschema-rs)
    gives every verdict; ``validator`` (jsonschema, over the schema with its local
    references inlined) is built only to explain an invalid document.  Which extension
    caused an error is worked out only when there is an error (``blame``).
    """

    def __init__(
        self,
        schema: dict[str, Any],
        source: Mapping[str, Any],
        names: tuple[str, ...] = (),
        base: dict[str, Any] | None = None,
    ) -> None:
        self.schema = schema
        self.source = source
        self.names = names
        self.base = base
        self.origins: dict[int, str] = {}

    @cached_property
    def fast(self) -> jsonschema_rs.Validator:
        """The jsonschema-rs validator; raises jsonschema-rs's ``ValidationError`` when a
        reference no longer resolves (the extension defining its target went away)."""
        from pipeline_ex import schema_rs

        return schema_rs.compile_validator(self.schema)

    @cached_property
    def validator(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(inline_local_refs(self.schema, origins=self.origins))

    @cached_property
    def owners(self) -> dict[str, str]:
        owners: dict[str, str] = {}
        if self.base is not None:
            merge_schemas(self.base, self.names, self.source, owners)
        return owners

    def blame(self, err: JSONSchemaValidationError | schema_rs.Violation) -> str | None:
        """The extension whose part of the schema raised ``err``, or ``None`` (the base).

        A jsonschema-rs error carries the place of its keyword in the merged schema.  A
        jsonschema error's schema path runs through the inlined schema that validator uses;
        each inlined definition is traced back to ``/$defs/NAME`` (``origins``) and a
        ``$ref`` to its target, giving the path in the merged schema.  The longest owned
        prefix of that path names the extension.
        """
        from pipeline_ex import schema_rs

        if not self.names:
            return None
        if isinstance(err, schema_rs.Violation):
            return self._owner_of("".join(f"/{key}" for key in err.location))
        root = self.validator.schema
        node: Any = root
        where = ""
        for key in err.absolute_schema_path:
            for _ in range(64):  # follow local $refs (a chain of them, bounded)
                if not isinstance(node, dict):
                    break
                where = self.origins.get(id(node), where)
                ref = node.get("$ref")
                if not (isinstance(ref, str) and ref.startswith("#/")) or key in node:
                    break
                # jsonschema reports the keywords of a $ref's target as if they were here
                where, node = ref[1:], _resolve_pointer(root, ref[1:])
            if key == "$ref" and isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/"):
                    where, node = ref[1:], _resolve_pointer(root, ref[1:])
                    continue
            where += f"/{key}"
            if isinstance(node, dict):
                node = node.get(key)
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                node = node[key]
            else:
                node = None  # past a remote $ref: the path so far still names the owner
        if err.validator == "required":
            missing = _required_name(err)
            if missing is not None:
                where += f"/{missing}"
        return self._owner_of(where)

    def _owner_of(self, where: str) -> str | None:
        claims = [p for p in self.owners if where == p or where.startswith(p + "/")]
        return self.owners[max(claims, key=len)] if claims else None


def _resolve_pointer(root: Any, pointer: str) -> Any:
    node = root
    for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _required_name(err: JSONSchemaValidationError) -> str | None:
    """The missing property of a ``required`` error (jsonschema keeps it in the message)."""
    names = err.validator_value if isinstance(err.validator_value, list) else []
    return next(
        (n for n in names if isinstance(n, str) and err.message == f"{n!r} is a required property"),
        None,
    )


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
            from jsonschema import Draft202012Validator

            Draft202012Validator.check_schema(base_schema)
            self._base = base_schema
        self._compiled: dict[tuple[str, ...], _CompiledSchema] = {}
        self._compile_lock = threading.Lock()

    @property
    def base_schema(self) -> dict[str, Any]:
        import copy

        return copy.deepcopy(self._base)

    def register_extensions(
        self, extensions: Mapping[str, Mapping[str, Any]], owner: str, *, swap: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Add extensions atomically, after proving they are valid and merge cleanly.

        Refused (``SchemaExtensionConflict``, code ``extension_invalid``, every problem with
        its JSON pointer inside the extension): a fragment that is not a valid schema, has a
        pattern that could backtrack exponentially (on the jsonschema path that explains
        invalid documents) or that jsonschema-rs cannot compile, or a ``$ref`` that does not
        resolve in the schema it would be part of (remote ones included: nothing is
        fetched).
        """
        from pipeline_ex import schema_rs
        from pipeline_ex.schema_extensions import (
            meta_schema_problems,
            pattern_problems,
            patterns,
            reference_problems,
        )

        for name, fragment in extensions.items():
            if not isinstance(fragment, Mapping):
                raise SchemaExtensionConflict(
                    f"schema extension {name!r} is not a mapping", code="extension_invalid"
                )
            _refuse(name, "is not a valid JSON Schema", meta_schema_problems(fragment))
            _refuse(name, "has an unsafe pattern", pattern_problems(fragment))
            _refuse(name, "has a pattern", schema_rs.pattern_problems(patterns(fragment)))
        current = {
            n: f for n, f in self.snapshot().items() if not (swap and self.owner(n) == owner)
        }
        clashing = [n for n in extensions if n in current and self.owner(n) != owner]
        if clashing:
            raise ComponentConflictError(
                f"schema extension(s) {clashing} already registered by "
                f"{', '.join(repr(self.owner(n)) for n in clashing)}"
            )
        # Prove the whole set still merges, and its references resolve, before publishing.
        trial = {**current, **{n: dict(f) for n, f in extensions.items()}}
        merged = self._merge(tuple(trial), trial)
        for name, fragment in extensions.items():
            _refuse(name, "has a $ref that does not resolve", reference_problems(fragment, merged))
        if swap:
            return self.replace_owner(owner, {n: dict(f) for n, f in extensions.items()})
        self.register_batch({n: dict(f) for n, f in extensions.items()}, owner)
        return {}

    def _after_write(self, touched: set[str]) -> None:
        self._compiled = {}

    def _merge(
        self, names: tuple[str, ...], source: Mapping[str, dict[str, Any]]
    ) -> dict[str, Any]:
        return merge_schemas(self._base, names, source)

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
                compiled = _CompiledSchema(self._merge(key, items), items, key, self._base)
                if self._items is items:
                    self._compiled[key] = compiled
        return compiled

    def compiled_schema(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The base schema with the named extensions (all registered ones by default)."""
        import copy

        return copy.deepcopy(self._compiled_for(names).schema)

    def problems(self, document: Document, names: Iterable[str] | None = None) -> list[Problem]:
        """Every schema problem of ``document``; one caused by an extension names it and
        its plugin."""
        from dataclasses import replace

        from pipeline_ex import schema_rs

        compiled = self._compiled_for(names)
        data = document.data
        errors: list[Any] | None = None
        if schema_rs.is_plain_json(data):
            fast = self._fast(compiled)
            try:
                if fast.is_valid(data):
                    return []
                errors = schema_rs.violations(fast, compiled.schema, data)
            except ValueError:  # a value jsonschema-rs cannot take: jsonschema judges it
                errors = None
        if errors is None:
            errors = self._explained(compiled, data)
        problems = []
        for err in sorted(errors, key=_error_sort_key):
            problem = _to_problem(document, err)
            culprit = compiled.blame(err)
            if culprit is not None:
                owner = self._owners.get(culprit, "?")
                problem = replace(
                    problem,
                    message=f"{problem.message} (from schema extension {culprit!r} "
                    f"of plugin {owner!r})",
                )
            problems.append(problem)
        return problems

    def _fast(self, compiled: _CompiledSchema) -> jsonschema_rs.Validator:
        from pipeline_ex import schema_rs

        try:
            return compiled.fast
        except schema_rs.build_error() as exc:
            raise self._dangling(compiled, None, str(exc)) from None

    def _explained(self, compiled: _CompiledSchema, data: Any) -> list[Any]:
        """jsonschema's errors for a document jsonschema-rs found invalid (or could not
        judge), ``allOf`` wrappers replaced by their causes."""
        from referencing.exceptions import Unresolvable

        try:
            errors = sorted(compiled.validator.iter_errors(data), key=_error_sort_key)
        except Unresolvable as exc:
            raise self._dangling(compiled, getattr(exc, "ref", ""), str(exc)) from None
        return _leaf_errors(errors)

    def _dangling(
        self, compiled: _CompiledSchema, ref: str | None, detail: str
    ) -> SchemaExtensionConflict:
        """A reference that resolved when registered no longer does (the extension holding
        its target went away): a typed error naming the extension, not an internal one.

        jsonschema-rs says so when the validator is built, in words (``ref`` is ``None``):
        then each extension whose references no longer resolve in the merged schema is
        named with its own problems."""
        from pipeline_ex.schema_extensions import reference_problems
        from pipeline_ex.schema_extensions import references as _references_of

        found: dict[str, list[str]] = {}
        for name in compiled.names:
            if ref is None:
                problems = reference_problems(compiled.source[name], compiled.schema)
            else:
                problems = [
                    f"$ref {ref!r}"
                    for _, _, target in _references_of(compiled.source[name])
                    if target == ref or target.endswith(ref)
                ][:1]
            if problems:
                found[name] = problems
        named = (
            ", ".join(f"{n!r} (plugin {self._owners.get(n, '?')!r})" for n in found)
            or "an extension"
        )
        what = "; ".join(p for problems in found.values() for p in problems)
        if not what:
            what = f"$ref {ref!r}" if ref is not None else (detail.splitlines() or ["?"])[0]
        return SchemaExtensionConflict(
            f"schema extension {named}: {what[:300]} no longer resolves in the workflow "
            "schema (was the extension defining it unloaded?)",
            code="extension_invalid",
        )

    @staticmethod
    def output_problems(schema: Mapping[str, Any], value: Any) -> list[str]:
        """Where ``value`` breaks ``schema`` (a step's ``output_schema``), one line each.

        The schema comes from an untrusted workflow: a reference outside it is refused
        before validation and the validator has no retrieval (``schema_refs``), so nothing
        is ever fetched; a value nested too deeply to check is a problem, not a crash.
        """
        from pipeline_ex import schema_rs
        from pipeline_ex.results_json import ResultEncodingError, jsonable
        from pipeline_ex.schema_extensions import pattern_problems
        from pipeline_ex.schema_refs import describe_remote, local_validator, remote_refs

        def where(path: Iterable[Any]) -> str:
            return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)

        remote = remote_refs(schema)
        try:
            # Built against the Draft 2020-12 meta-schema, with a retriever that refuses:
            # an invalid schema or an outside reference fails here, without a request.
            validator = schema_rs.compile_validator(schema)
        except schema_rs.build_error() as exc:
            broken = _invalid_schema_message(schema)
            if broken is not None:
                return [f"output_schema is not a valid JSON Schema: {broken}"]
            if remote:
                return [
                    f"output_schema{where(path)}: {describe_remote(ref)}" for path, ref in remote
                ]
            detail = (str(exc).splitlines() or ["?"])[0]
            return [f"output_schema could not be applied: {detail}"[:300]]
        if remote:
            return [f"output_schema{where(path)}: {describe_remote(ref)}" for path, ref in remote]
        try:
            # Checked as JSON sees it (text keys, no NaN), as a reader of the output would.
            instance = jsonable(value)
            if validator.is_valid(instance):
                return []
            found = schema_rs.violations(validator, schema, instance)
        except (RecursionError, ResultEncodingError):
            return ["output is nested too deeply to check against output_schema"]
        except ValueError as exc:
            return [f"output_schema could not be applied: {type(exc).__name__}: {exc}"[:300]]
        if found is None and pattern_problems(schema):
            # jsonschema would run this untrusted pattern on Python's backtracking ``re``:
            # jsonschema-rs's own words instead.
            return [
                f"output{where(err.instance_path)}: {err.message}"
                for err in validator.iter_errors(instance)
            ]
        if found is not None:
            errors: list[Any] = found
        else:
            from referencing.exceptions import Unresolvable

            try:
                errors = list(local_validator(schema).iter_errors(instance))
            except Unresolvable as exc:
                return [f"output_schema: unresolvable reference {str(exc)[:120]}"]
            except RecursionError:
                return ["output is nested too deeply to check against output_schema"]
            except Exception as exc:  # e.g. a "pattern" Python's re reads differently
                return [f"output_schema could not be applied: {type(exc).__name__}: {exc}"[:300]]
        return [
            f"output{where(err.absolute_path)}: {_message(err)}"
            for err in sorted(errors, key=_error_sort_key)
        ]

    def validate(self, document: Document | Any, names: Iterable[str] | None = None) -> None:
        """Raise ``SchemaValidationError`` listing every problem, or return quietly."""
        doc = document if isinstance(document, Document) else Document(document)
        problems = self.problems(doc, names)
        if problems:
            raise SchemaValidationError(problems)


def _invalid_schema_message(schema: Mapping[str, Any]) -> str | None:
    """jsonschema's explanation of why ``schema`` breaks the Draft 2020-12 meta-schema, or
    ``None`` when it does not (only asked once jsonschema-rs refused the schema)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(dict(schema))
    except SchemaError as exc:
        return exc.message
    return None


def _error_sort_key(
    err: JSONSchemaValidationError | schema_rs.Violation,
) -> tuple[tuple[str, ...], str]:
    """By path, then message: the same order whichever validator found the errors."""
    return tuple(str(p) for p in err.absolute_path), err.message


def _leaf_errors(
    errors: list[JSONSchemaValidationError],
) -> list[Any]:
    """Replace ``allOf``/``anyOf`` wrappers by their most specific causes."""
    out: list[Any] = []
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


def _message(err: JSONSchemaValidationError | schema_rs.Violation) -> str:
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


def _to_problem(
    document: Document, err: JSONSchemaValidationError | schema_rs.Violation
) -> Problem:
    path: PathKey = tuple(err.absolute_path)
    return document.problem(path, _message(err))
