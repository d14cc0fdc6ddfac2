"""Schema extensions are checked against the Draft 2020-12 meta-schema by jsonschema-rs
first; jsonschema only explains a fragment jsonschema-rs did not pass.  The verdicts must
agree, and a fragment's ``$schema`` must never make anything fetch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipeline_ex.schema_extensions import (
    SHIPPED_VALID,
    _passes_meta_schema,
    canonical_text,
    meta_schema_problems,
)

_META = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)


@pytest.mark.parametrize(
    "fragment",
    [
        {"properties": {"workflow": {"properties": {"x": {"type": "string"}}}}},
        {"type": "integr"},
        {"items": [{}]},  # draft 7's array form: not 2020-12
        {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{}]},
        {"$schema": "http://127.0.0.1:9/never-fetched"},
        {"pattern": "(?<"},  # not a Python regex: jsonschema's format checker refuses it
        {"pattern": "^a$", "patternProperties": {"(": {}}},
        {"$defs": {"a": {"$dynamicAnchor": "x y"}}},
        {"required": ["a", "a"]},
        {"minimum": "x"},
        {"enum": []},
        {"properties": {"a": float("nan")}},
        {"properties": ({"a": {}},)},
    ],
)
def test_same_verdict_as_jsonschema(fragment: dict[str, Any]) -> None:
    valid = _META.is_valid(fragment)
    if _passes_meta_schema(fragment):
        assert valid
    assert (meta_schema_problems(fragment) == []) is valid


_SCHEMAS = st.recursive(
    st.one_of(
        st.booleans(),
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["string", "integer", "objekt", ["string", "null"], 3]),
                "pattern": st.sampled_from(["^a$", "(", "\\d+", "(?P<n>x)", "[", 5]),
                "minimum": st.one_of(st.integers(), st.text(max_size=2)),
                "required": st.lists(st.sampled_from(["a", "b"]), max_size=3),
                "$schema": st.sampled_from(["http://127.0.0.1:9/x", "urn:x"]),
                "enum": st.lists(st.integers(), max_size=2),
            },
        ),
    ),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"properties": st.dictionaries(st.text(max_size=3), inner)}),
        st.fixed_dictionaries({"items": st.one_of(inner, st.lists(inner, max_size=2))}),
        st.fixed_dictionaries({"anyOf": st.lists(inner, max_size=2)}),
        st.fixed_dictionaries(
            {"patternProperties": st.dictionaries(st.sampled_from(["^x", "("]), inner)}
        ),
    ),
    max_leaves=6,
)


@pytest.mark.slow  # fuzz: 300 examples
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SCHEMAS.filter(lambda s: isinstance(s, dict)))
def test_fuzzed_fragments_get_the_same_verdict(fragment: dict[str, Any]) -> None:
    valid = _META.is_valid(fragment)
    if _passes_meta_schema(fragment):
        assert valid
    assert (meta_schema_problems(fragment) == []) is valid


_COMPILED = {
    "$id": "https://pipeline-ex.dev/schemas/workflow.json",
    "$defs": {
        "step": {"type": "object"},
        "a/b": {"type": "string"},
        "list": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "embedded": {"$id": "https://other.example/x", "$defs": {"y": {}}},
        "anchored": {"$anchor": "here"},
    },
}


@pytest.mark.parametrize(
    "ref",
    [
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2020-12/schema#/$defs/nothing",
        "https://json-schema.org/draft/2020-12/meta/core",
        "https://json-schema.org/draft-07/schema#",
        "#/$defs/step",
        "#/$defs/a~1b",
        "#/$defs/list/anyOf/1",
        "#/$defs/list/anyOf/01",
        "#/$defs/list/anyOf/2",
        "#/$defs/missing",
        "#/$defs/embedded/$defs/y",
        "#here",
        "#/%24defs/step",
        "https://127.0.0.1:9/remote.json",
        "other.json#/x",
    ],
)
def test_reference_shortcut_agrees_with_the_registry(
    ref: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline_ex.schema_extensions as extensions

    fragment = {"$defs": {"step": {"properties": {"x": {"$ref": ref}}}}}
    quick = extensions.reference_problems(fragment, _COMPILED)
    monkeypatch.setattr(extensions, "_plainly_resolves", lambda *args: False)
    assert quick == extensions.reference_problems(fragment, _COMPILED)


def _shipped_fragments() -> list[dict[str, Any]]:
    """What the built-in plugins contribute, read off a started Runtime."""
    from pipeline_ex import Runtime

    with Runtime() as runtime:
        return [dict(f) for f in runtime.configuration.snapshot().values()]


@pytest.mark.parametrize("text", sorted(SHIPPED_VALID))
def test_fragments_passed_unchecked_pass_both_checks(text: str) -> None:
    """The start-up shortcut (``SHIPPED_VALID``) holds only fragments both validators pass."""
    fragment = json.loads(text)
    assert canonical_text(fragment) == text
    assert _META.is_valid(fragment)
    assert _passes_meta_schema(fragment)


def test_every_built_in_fragment_takes_the_shortcut() -> None:
    """A changed built-in fragment fails here (so ``SHIPPED_VALID`` is updated with it and
    proven above), rather than quietly costing every start-up the jsonschema-rs import."""
    shipped = _shipped_fragments()
    assert shipped and all(canonical_text(f) in SHIPPED_VALID for f in shipped)


@pytest.mark.parametrize(
    "fragment",
    [
        # the shipped fragment's shape with a broken type: checked, refused
        {"$defs": {"step": {"properties": {"output_schema": {"type": "objekt"}}}}},
        # not plain JSON (a tuple): never takes the shortcut
        {"$defs": ({"step": {}},)},
    ],
)
def test_anything_else_is_checked(fragment: dict[str, Any]) -> None:
    assert canonical_text(fragment) not in SHIPPED_VALID
    assert meta_schema_problems(fragment) != []
