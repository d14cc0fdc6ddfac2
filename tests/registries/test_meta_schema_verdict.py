"""Schema extensions are checked against the Draft 2020-12 meta-schema by jsonschema-rs
first; jsonschema only explains a fragment jsonschema-rs did not pass.  The verdicts must
agree, and a fragment's ``$schema`` must never make anything fetch."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipeline_ex.schema_extensions import _passes_meta_schema, meta_schema_problems

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
