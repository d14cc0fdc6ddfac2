"""The host's document schemas on jsonschema-rs: the same verdict and the same errors as
jsonschema alone, and nothing fetched."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from counting_server import CountingServer
from pipeline_ex.documents import Document
from pipeline_ex.errors import SchemaValidationError
from pipeline_ex.plugins.loader import CONFIG_SCHEMA, MANIFEST_SCHEMA, PluginLoader
from pipeline_ex.plugins.schema_check import DocumentSchema
from pipeline_ex.schema_rs import is_plain_json

CONFIG = DocumentSchema(CONFIG_SCHEMA)


def _jsonschema_messages(schema: dict[str, Any], data: Any) -> list[tuple[str, str]]:
    """What the jsonschema-only path reported: (path, message), in its order."""
    errors = sorted(
        Draft202012Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.path))
    )
    return [(".".join(map(str, e.absolute_path)), e.message) for e in errors]


def _checked(schema: DocumentSchema, data: Any) -> list[tuple[str, str]]:
    try:
        schema.check(Document(data, "cfg.yaml", {}))
    except SchemaValidationError as exc:
        return [
            (p.location.path.replace("[", ".").replace("]", ""), p.message) for p in exc.problems
        ]
    return []


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ({"a": [1, 2.5, "x", True, None]}, True),
        ({"a": float("nan")}, False),
        ({"a": float("inf")}, False),
        ({"a": (1, 2)}, False),
        ({1: "x"}, False),
        ({"a": datetime.date(2024, 1, 1)}, False),
        ({"a": {1, 2}}, False),
        ({"a": 2**70}, False),
        ({"a": -(2**63)}, True),
    ],
)
def test_plain_json(value: Any, plain: bool) -> None:
    assert is_plain_json(value) is plain


@pytest.mark.parametrize(
    "data",
    [
        {"plugins": {}},
        {"plugins": None, "autoload": True},
        {"plugins": {"a": {"module": "m", "config": {"when": datetime.date(2024, 1, 1)}}}},
        {"plugins": {"a": {"module": "m", "limits": {"call_timeout_s": float("nan")}}}},
        {"plugins": {"a": {"module": "m", "config": float("nan")}}},  # nan is not null
        {"plugins": {"a": {"module": "m", "dependencies": ("b",)}}},  # a tuple is no array
        {"plugins": {"abc\n": {"module": "m"}}},  # Python's $ matches before a final newline
        {"plugins": {"1a": {"module": "m"}}},
        {"plugins": {"a": {"module": "m", "path": "p"}}},
        {"plugins": {"a": {}}},
        {"plugins": {"a": {"module": "", "enabled": "yes", "isolation": "vm"}}},
        {"plugins": {"a": {"module": "m", "sandbox_degrade": 1}}},
        {"plugins": {"a": {"module": "m", "limits": {"memory_mb": 8, "cpu_s": 1.5}}}},
        {"plugins": {}, "security": {"signature_policy": "maybe", "grants": {"a": [""]}}},
        {"autoload": "yes please", "plugins": {}},
        {"plugin": {}},
    ],
)
def test_same_errors_as_jsonschema_alone(data: dict[str, Any]) -> None:
    assert _checked(CONFIG, data) == _jsonschema_messages(CONFIG_SCHEMA, data)


@pytest.mark.parametrize(
    "manifest",
    [
        {"name": "x", "version": "1.0", "module": "impl"},
        {"name": "x", "version": 1.5, "module": "impl:Plugin.inner"},
        {"name": "x", "version": "1", "module": "bad-name"},
        {"name": "x", "version": "1", "module": "impl:Plügin"},  # Python's \w is Unicode
        {"name": "", "version": None, "module": "impl", "extra": 1},
    ],
)
def test_manifests_too(manifest: dict[str, Any]) -> None:
    assert _checked(DocumentSchema(MANIFEST_SCHEMA), manifest) == _jsonschema_messages(
        MANIFEST_SCHEMA, manifest
    )


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(["in_process", "process", "sandbox", "allow", "strict", "m"]),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=8,
)
_ENTRY_KEYS = st.sampled_from(
    [
        "module",
        "path",
        "enabled",
        "config",
        "dependencies",
        "overrides",
        "isolation",
        "restart",
        "sandbox_degrade",
        "limits",
        "extra",
    ]
)
_ENTRIES = st.dictionaries(_ENTRY_KEYS, _VALUES, max_size=4)
_DOCUMENTS = st.fixed_dictionaries(
    {
        "plugins": st.dictionaries(
            st.from_regex(r"[A-Za-z_1][a-z.\n-]{0,3}", fullmatch=True), _ENTRIES, max_size=3
        )
    },
    optional={"autoload": _VALUES, "security": _VALUES},
)


@pytest.mark.slow  # fuzz: 300 examples
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOCUMENTS)
def test_fuzzed_configs_get_the_same_verdict_and_errors(data: dict[str, Any]) -> None:
    expected = _jsonschema_messages(CONFIG_SCHEMA, data)
    if CONFIG.passes(data):
        assert expected == []
    assert _checked(CONFIG, data) == expected


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    try:
        yield server
    finally:
        server.close()


def test_nothing_is_fetched(counting_server: CountingServer) -> None:
    url, hits = counting_server.url + "/schema.json", counting_server.requests
    remote = DocumentSchema({"type": "object", "properties": {"x": {"$ref": url}}})
    with pytest.raises(ValueError, match="never retrieved"):
        remote.passes({"x": {}})
    assert hits == []


def test_a_config_document_still_fails_with_file_path_and_line(tmp_path: Any) -> None:
    config = tmp_path / "plugin_config.yaml"
    config.write_text("plugins:\n  a:\n    module: m\n    enabled: sure\n")
    with pytest.raises(SchemaValidationError) as info:
        PluginLoader.load_config(config)
    assert str(info.value) == f"{config}:4 at plugins.a.enabled: 'sure' is not of type 'boolean'"
