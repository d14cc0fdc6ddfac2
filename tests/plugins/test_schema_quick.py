"""The engine-free verdict (``schema_quick``) against jsonschema: the same verdict whenever
it gives one, the same errors through ``DocumentSchema`` with and without it, and a verdict
(no engine import) for every document of the documented shapes."""

from __future__ import annotations

import datetime
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipeline_ex import schema_quick
from pipeline_ex.documents import Document
from pipeline_ex.errors import SchemaValidationError
from pipeline_ex.plugins.loader import CONFIG_SCHEMA, MANIFEST_SCHEMA
from pipeline_ex.plugins.schema_check import DocumentSchema

QUICK_CONFIG = schema_quick.compile_check(CONFIG_SCHEMA)
QUICK_MANIFEST = schema_quick.compile_check(MANIFEST_SCHEMA)
WITH, WITHOUT = DocumentSchema(CONFIG_SCHEMA), DocumentSchema(CONFIG_SCHEMA, quick=False)


def _outcome(schema: DocumentSchema, data: Any) -> list[str]:
    try:
        schema.check(Document(data, "cfg.yaml", {}))
    except SchemaValidationError as exc:
        return [str(p) for p in exc.problems]
    return []


# -- documents of the documented shapes, each field sometimes replaced by junk ---------------
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 1.0, 0.5, 16, 2**64, math.nan, math.inf, -math.inf, -0.0]),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.sampled_from(["", "in_process", "allow", "deny", "off", "warn", "abc\n", "1a"]),
    st.lists(st.one_of(st.text(max_size=3), st.integers(), st.none()), max_size=3),
    st.tuples(st.text(max_size=2)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(datetime.date(2024, 1, 1)),
    st.frozensets(st.integers(), max_size=2),
)


def _or_junk(valid: st.SearchStrategy[Any], junk: bool) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, valid, _JUNK) if junk else valid


def _section(
    fields: dict[str, st.SearchStrategy[Any]], junk: bool
) -> st.SearchStrategy[dict[str, Any]]:
    extra = {"unknown_key": _JUNK} if junk else {}
    optional = {k: _or_junk(v, junk) for k, v in {**fields, **extra}.items()}
    return st.fixed_dictionaries({}, optional=optional)


def _documents(junk: bool) -> st.SearchStrategy[dict[str, Any]]:
    text = st.text(min_size=1, max_size=6)
    texts = st.lists(text, max_size=3)
    positive = st.one_of(st.integers(1, 10**6), st.floats(0.001, 1e6))
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4))
    config = st.one_of(st.none(), st.dictionaries(st.text(max_size=4), leaf, max_size=3))
    error_rate = _section(
        {
            "window_s": positive,
            "threshold": st.floats(0.001, 1),
            "min_calls": st.integers(1, 100),
        },
        junk,
    )
    monitoring = _section({"health_interval_s": st.floats(0, 100), "error_rate": error_rate}, junk)
    limits = _section(
        {
            "call_timeout_s": positive,
            "memory_mb": st.integers(16, 4096),
            "cpu_s": st.integers(1, 100),
            "open_files": st.integers(8, 1024),
        },
        junk,
    )
    common = {
        "enabled": st.booleans(),
        "config": config,
        "dependencies": texts,
        "overrides": texts,
        "isolation": st.sampled_from(["in_process", "process", "sandbox"]),
        "monitoring": monitoring,
        "restart": _section({"max_restarts": st.integers(0, 10), "window_s": positive}, junk),
        "sandbox_degrade": st.sampled_from(["allow", "deny", True, False]),
        "limits": limits,
    }
    by_module = st.fixed_dictionaries({"module": _or_junk(text, junk)})
    by_path = st.fixed_dictionaries({"path": _or_junk(text, junk)})
    both = st.fixed_dictionaries({"module": text, "path": text})
    heads = st.one_of(by_module, by_path, both, st.just({})) if junk else by_module | by_path
    entry = st.builds(lambda head, rest: {**head, **rest}, heads, _section(common, junk))
    names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,5}", fullmatch=True)
    if junk:
        names = names | st.sampled_from(["1a", "abc\n", "a b", ""])
    plugins = st.one_of(st.none(), st.dictionaries(names, _or_junk(entry, junk), max_size=4))
    security = _section(
        {
            "signature_policy": st.sampled_from(["off", "warn", "require"]),
            "trusted_keys": texts,
            "grants": st.dictionaries(st.text(max_size=3), texts, max_size=2),
        },
        junk,
    )
    top = {"autoload": st.booleans(), "security": security, "monitoring": monitoring}
    if junk:
        top["plugin"] = _JUNK
    return st.fixed_dictionaries(
        {"plugins": _or_junk(plugins, junk)},
        optional={k: _or_junk(v, junk) for k, v in top.items()},
    )


@pytest.mark.slow  # fuzz: 400 examples
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents(junk=True))
def test_quick_verdict_equals_jsonschemas_and_errors_do_not_change(data: dict[str, Any]) -> None:
    expected = Draft202012Validator(CONFIG_SCHEMA).is_valid(data)
    quick = schema_quick.verdict(QUICK_CONFIG, data)
    assert quick in (None, expected)
    assert _outcome(WITH, data) == _outcome(WITHOUT, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents(junk=False))
def test_documented_shapes_are_decided_without_an_engine(data: dict[str, Any]) -> None:
    assert schema_quick.verdict(QUICK_CONFIG, data) is True
    assert Draft202012Validator(CONFIG_SCHEMA).is_valid(data)


@pytest.mark.parametrize(
    ("manifest", "valid"),
    [
        ({"name": "x", "version": "1.0", "module": "impl"}, True),
        ({"name": "x", "version": 1.5, "module": "impl:Plugin.inner", "api_version": 1}, True),
        ({"name": "x", "version": "1", "module": "bad-name"}, False),
        ({"name": "x", "version": "1", "module": "impl:Plügin"}, True),  # \w is Unicode
        ({"name": "x", "version": True, "module": "impl"}, False),
        ({"name": "x", "version": "1", "module": "impl", "permissions": ["fs:read"]}, True),
        ({"name": "", "version": None, "module": "impl", "extra": 1}, False),
    ],
)
def test_manifests_are_decided_too(manifest: dict[str, Any], valid: bool) -> None:
    assert Draft202012Validator(MANIFEST_SCHEMA).is_valid(manifest) is valid
    assert schema_quick.verdict(QUICK_MANIFEST, manifest) is valid


# -- any schema of the supported keywords, any value ------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 2.5, -1.5, math.nan, math.inf]),
    st.sampled_from(["", "a", "ab", "a1", "A_", "x\n", "é"]),
)
_INSTANCES = st.recursive(
    _SCALARS | st.just(datetime.date(2024, 1, 1)),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "1"]), inner, max_size=3)
    ),
    max_leaves=6,
)
_TYPES = st.sampled_from(["object", "array", "string", "boolean", "integer", "number", "null"])
_LIMIT = st.sampled_from([0, 1, 2, 1.5, -1, 0.0])


def _schemas() -> st.SearchStrategy[Any]:
    def keywords(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        props = st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=2)
        return st.fixed_dictionaries(
            {},
            optional={
                "type": _TYPES | st.lists(_TYPES, min_size=1, max_size=3, unique=True),
                "enum": st.lists(_SCALARS, min_size=1, max_size=3),
                "minLength": st.integers(0, 2),
                "maxItems": st.integers(0, 2),
                "minProperties": st.integers(0, 2),
                "minimum": _LIMIT,
                "exclusiveMaximum": _LIMIT,
                "pattern": st.sampled_from(["^a", "^[A-Za-z_][A-Za-z0-9_]*$", "1", "."]),
                "required": st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True),
                "properties": props,
                "additionalProperties": inner,
                "propertyNames": inner,
                "items": inner,
                "oneOf": st.lists(inner, min_size=1, max_size=2),
                "anyOf": st.lists(inner, min_size=1, max_size=2),
                "not": inner,
                "description": st.text(max_size=3),
            },
        )

    return st.recursive(st.booleans() | st.just({}), keywords, max_leaves=5)


@pytest.mark.slow  # fuzz: 500 examples
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_schemas(), _INSTANCES)
def test_any_supported_schema_gets_jsonschemas_verdict(schema: Any, instance: Any) -> None:
    check = schema_quick.compile_check(schema)
    assert check is not None  # every keyword drawn here is supported
    quick = schema_quick.verdict(check, instance)
    assert quick in (None, Draft202012Validator(schema).is_valid(instance))


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/x", "$defs": {"x": {}}},
        {"const": 1},
        {"patternProperties": {"^a": {}}, "additionalProperties": False},
        {"prefixItems": [{}], "items": False},
        {"type": "any"},
        {"pattern": "(?P<open"},
        {"properties": {"a": {"uniqueItems": True}}},
    ],
)
def test_what_is_not_applied_here_is_left_to_the_engine(schema: dict[str, Any]) -> None:
    assert schema_quick.compile_check(schema) is None
    assert schema_quick.verdict(None, {}) is None


class _Name(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"plugins": {"a": {"module": "m", "enabled": datetime.date(2024, 1, 1)}}},
        {"plugins": {"a": {"module": "m", "dependencies": ("b",)}}},  # a tuple is no array
        {"plugins": {"a": {"module": _Name("m")}}},  # a str subclass
    ],
)
def test_values_that_are_not_exactly_json_are_left_to_the_engine(value: Any) -> None:
    assert schema_quick.verdict(QUICK_CONFIG, value) is None


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"type": "integer"}, 1.0),  # Draft 6+: an integral float is an integer
        ({"type": "integer"}, 1.5),
        ({"type": "integer"}, True),  # a bool is no integer
        ({"type": "number"}, False),
        ({"type": ["number"]}, 3),
        ({"type": "integer"}, math.nan),
        ({"enum": [1]}, True),  # True is not 1 for enum ...
        ({"enum": [True]}, 1),
        ({"enum": [1]}, 1.0),  # ... but 1.0 is 1
        ({"enum": [False, "0"]}, 0),
        ({"enum": [None]}, None),
        ({"minimum": 0}, math.nan),  # NaN compares false both ways, as in jsonschema
        ({"maximum": 1}, math.inf),
        ({"exclusiveMinimum": 0}, 0.0),
        ({"minimum": 1}, True),  # bounds do not apply to booleans
        ({"pattern": "^[a-z]+$"}, "abc\n"),  # Python's $ matches before a final newline
        ({"pattern": "b"}, "abc"),  # re.search, not re.match
        ({"minLength": 1}, "é"),
        ({"additionalProperties": False}, {"a": 1}),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1}),
        ({"additionalProperties": {"type": "string"}, "properties": {"a": {}}}, {"a": 1, "b": 2}),
        ({"propertyNames": {"pattern": "^a"}}, {"ab": 1, "b": 2}),
        ({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"a": 1, "b": 2}),
        ({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"b": 2}),
        ({"items": {"type": "string"}}, ["a", 1]),
        ({"items": False}, []),
        ({"required": ["a"]}, ["a"]),  # required applies to objects only
        ({"not": {"type": "null"}}, None),
    ],
)
def test_the_fine_points_match_jsonschema(schema: dict[str, Any], instance: Any) -> None:
    check = schema_quick.compile_check(schema)
    assert schema_quick.verdict(check, instance) is Draft202012Validator(schema).is_valid(instance)
