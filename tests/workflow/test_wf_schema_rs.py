"""Validation on jsonschema-rs (issue 12): nothing fetched, and the same verdicts, paths,
lines and messages as the jsonschema path it replaced.

"The jsonschema path" is ``ConfigurationSystem.problems`` with jsonschema-rs out of the
way (``schema_rs.is_plain_json`` answering no, which sends every document to jsonschema,
as before issue 12); the verdict is also checked against a plain jsonschema validator of
the merged schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from test_wf_fuzz import CORPUS_TEXTS, FUZZ, trees, workflows

from counting_server import CountingServer
from pipeline_ex import Runtime, schema_rs
from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.documents import Document, load_yaml, load_yaml_file
from pipeline_ex.errors import SchemaValidationError

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "pipeline_ex_corpus"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingServer]:
    for name in ("NO_PROXY", "no_proxy"):  # a proxy must not hide a request from the count
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    counting = CountingServer()
    try:
        yield counting
    finally:
        counting.close()


# -- nothing leaves the machine --------------------------------------------------------------


def test_the_counting_server_sees_what_jsonschema_rs_fetches_by_default(
    server: CountingServer,
) -> None:
    """The control: without a retriever, jsonschema-rs does fetch (so the tests below,
    which count zero requests, would see one)."""
    validator = jsonschema_rs.validator_for({"$ref": server.url + "/default.json"})
    assert not validator.is_valid(3)  # the fetched schema says "string"
    assert server.requests == ["/default.json"]


def remote_schemas(url: str) -> list[dict[str, Any]]:
    return [
        {"$ref": url + "/a.json"},
        {"$ref": url + "/b?key=SECRET"},
        {"properties": {"a": {"$ref": url + "/c.json"}}},
        {"$dynamicRef": url + "/d.json"},
        {"$id": url + "/root.json", "$ref": "sibling.json"},
        {"$schema": url + "/meta.json", "type": "string"},
        {"items": {"$ref": url + "/e.json#/x"}, "$defs": {"x": {"$ref": url + "/f.json"}}},
    ]


def test_no_validator_built_here_fetches(server: CountingServer) -> None:
    for schema in remote_schemas(server.url):
        try:
            validator = schema_rs.compile_validator(schema)
        except schema_rs.build_error() as exc:
            assert "never retrieved" in str(exc) or "not present" in str(exc), str(exc)
        else:  # ("$schema" alone: the draft is fixed to 2020-12, nothing to look up)
            validator.is_valid("x")
    assert server.requests == []


def test_output_schema_with_remote_refs_makes_no_request(server: CountingServer) -> None:
    for schema in remote_schemas(server.url):
        ConfigurationSystem.output_problems(schema, {"a": 1})
        ConfigurationSystem.output_problems(schema, "text")
    assert ConfigurationSystem.output_problems({"$ref": server.url + "/x"}, 1)
    assert server.requests == []


def test_workflows_with_remote_output_schemas_make_no_request(
    server: CountingServer, tmp_path: Path
) -> None:
    with Runtime() as runtime:
        for index, schema in enumerate(remote_schemas(server.url)):
            step = {"name": "s", "type": "test_echo", "value": "v", "output_schema": schema}
            document = {"workflow": {"name": f"w{index}", "steps": [step]}}
            for call in (runtime.validate, runtime.run):
                try:
                    if call is runtime.run:
                        runtime.run(document, output_dir=tmp_path)
                    else:
                        runtime.validate(document)
                except Exception as exc:  # refused, with a typed error
                    assert getattr(exc, "code", None), exc
    assert server.requests == []


def test_the_bundled_meta_schema_resolves_without_retrieval(server: CountingServer) -> None:
    meta = {"$ref": "https://json-schema.org/draft/2020-12/schema"}
    assert ConfigurationSystem.output_problems(meta, {"type": "string"}) == []
    assert ConfigurationSystem.output_problems(meta, {"type": "integr"})
    assert server.requests == []


# -- the same answers as the jsonschema path -------------------------------------------------


def extension_plugin() -> type:
    """Extensions that exercise the keywords jsonschema-rs's errors are rebuilt for, and
    ``anyOf``/``oneOf``/``not`` that go to jsonschema."""
    fragments = {
        "limits_ext": {
            "properties": {
                "workflow": {
                    "properties": {
                        "owner": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"},
                        "tier": {"enum": ["a", "b", 3]},
                        "mode": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                        "pick": {"oneOf": [{"type": "integer"}, {"minimum": 2}]},
                        "flag": {"const": True},
                        "never": {"not": {"type": "string"}},
                        "meta": {
                            "type": "object",
                            "properties": {"k": {"type": "integer", "multipleOf": 2}},
                            "additionalProperties": False,
                            "minProperties": 1,
                            "maxProperties": 2,
                        },
                        "tags": {"type": "array", "uniqueItems": True, "maxItems": 3},
                    }
                }
            }
        },
        "step_ext": {
            "$defs": {
                "step": {
                    "properties": {
                        "retries": {"type": "integer", "exclusiveMinimum": 0, "maximum": 5},
                        "timeout": {"type": "number", "exclusiveMaximum": 60},
                    }
                }
            }
        },
    }

    class Extensions:
        def init(self, config: Any) -> Any:
            return None

        def get_metadata(self, state: Any) -> dict[str, Any]:
            return {"name": "limits", "version": "1.0", "api_version": 1}

        def get_schema_extensions(self, state: Any) -> Any:
            return list(fragments.items())

    return Extensions


@pytest.fixture(scope="module")
def runtimes() -> Iterator[tuple[Runtime, Runtime]]:
    with Runtime() as plain, Runtime() as extended:
        extended.plugins.load_plugin("limits", extension_plugin())
        yield plain, extended


def _seen(problems: list[Any]) -> list[tuple[Any, Any, str]]:
    return [(p.location.path, p.location.line, p.message) for p in problems]


def assert_same_answers(configuration: ConfigurationSystem, document: Document) -> None:
    """The new path and the jsonschema path agree on verdict, paths, lines and messages."""
    new = _seen(configuration.problems(document))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema_rs, "is_plain_json", lambda value: False)
        old = _seen(configuration.problems(document))
    assert new == old
    reference = Draft202012Validator(configuration.compiled_schema())
    assert (not new) == reference.is_valid(document.data)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="pipeline_ex corpus not present")
def test_every_corpus_file_gets_the_same_answers(runtimes: tuple[Runtime, Runtime]) -> None:
    files = sorted(CORPUS.glob("*.yaml"))
    assert len(files) == 46
    verdicts = set()
    for runtime in runtimes:
        for path in files:
            document = load_yaml_file(path)
            assert_same_answers(runtime.configuration, document)
            verdicts.add(not runtime.configuration.problems(document))
    assert verdicts == {True, False}  # both kinds are in the corpus


@pytest.mark.slow  # fuzz: hundreds of generated documents
@FUZZ
@given(document=workflows)
def test_generated_workflows_get_the_same_answers(
    runtimes: tuple[Runtime, Runtime], document: dict[str, Any]
) -> None:
    for runtime in runtimes:
        assert_same_answers(runtime.configuration, load_yaml(yaml.safe_dump(document), "w.yaml"))


@pytest.mark.slow  # fuzz: hundreds of generated documents
@FUZZ
@given(document=trees)
def test_free_form_documents_get_the_same_answers(
    runtimes: tuple[Runtime, Runtime], document: Any
) -> None:
    """Including what only jsonschema can judge: NaN, infinities, integer keys."""
    for runtime in runtimes:
        assert_same_answers(runtime.configuration, Document(document, "t.yaml"))
        assert_same_answers(runtime.configuration, Document({"workflow": document}, "t.yaml"))


EXTENSION_VALUES = {
    "owner": st.one_of(st.sampled_from(["abc", "toolongname", "Abc", ""]), trees),
    "tier": st.one_of(st.sampled_from(["a", "b", 3, 3.0, True, "c"]), trees),
    "mode": st.one_of(st.sampled_from(["x", 1, 1.5]), trees),
    "pick": st.one_of(st.sampled_from([1, 2, 3, 1.5, "x"]), trees),
    "flag": st.one_of(st.sampled_from([True, 1, False]), trees),
    "never": st.one_of(st.sampled_from(["x", 1]), trees),
    "meta": st.one_of(
        st.dictionaries(st.sampled_from(["k", "z"]), st.sampled_from([2, 3, 4.0, "x"])), trees
    ),
    "tags": st.one_of(st.lists(st.sampled_from([1, 1.0, True, "a", [1]]), max_size=5), trees),
}
STEP_VALUES = {
    "retries": st.sampled_from([0, 1, 5, 6, 2.0, True, "x", -1]),
    "timeout": st.sampled_from([59.5, 60, 61, "x", None]),
}


@pytest.mark.slow  # fuzz: hundreds of generated extensions
@FUZZ
@given(data=st.data())
def test_extension_keywords_get_the_same_answers(
    runtimes: tuple[Runtime, Runtime], data: st.DataObject
) -> None:
    """Every keyword whose jsonschema-rs error is rebuilt, and the ones explained by
    jsonschema, with the extension behind each error named the same way."""
    workflow: dict[str, Any] = {"name": "w", "steps": []}
    for key, values in EXTENSION_VALUES.items():
        if data.draw(st.booleans(), label=f"has {key}"):
            workflow[key] = data.draw(values, label=key)
    for index in range(data.draw(st.integers(1, 3), label="steps")):
        step: dict[str, Any] = {"name": f"s{index}", "type": "test_echo"}
        for key, values in STEP_VALUES.items():
            if data.draw(st.booleans(), label=f"step has {key}"):
                step[key] = data.draw(values, label=key)
        workflow["steps"].append(step)
    _, extended = runtimes
    document = {"workflow": workflow}
    assert_same_answers(extended.configuration, load_yaml(yaml.safe_dump(document), "w.yaml"))


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 12),
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
        st.sampled_from(["", "a", "ab", "abc", "A1", "x" * 90]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "b", "k"]), inner)
    ),
    max_leaves=8,
)
numbers = st.one_of(st.integers(-2, 6), st.sampled_from([0.5, 1.0, 2.5]))
counts = st.integers(0, 3)
KEYWORDS: dict[str, st.SearchStrategy[Any]] = {
    "type": st.one_of(
        st.sampled_from(["string", "integer", "number", "object", "array", "boolean", "null"]),
        st.lists(
            st.sampled_from(["string", "integer", "null", "array"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
    ),
    "minLength": counts,
    "maxLength": counts,
    "minItems": counts,
    "maxItems": counts,
    "minProperties": counts,
    "maxProperties": counts,
    "minimum": numbers,
    "maximum": numbers,
    "exclusiveMinimum": numbers,
    "exclusiveMaximum": numbers,
    "multipleOf": st.sampled_from([2, 3, 0.5, 1.5]),
    "enum": st.lists(json_values, min_size=1, max_size=3),
    "const": json_values,
    "uniqueItems": st.booleans(),
    "pattern": st.sampled_from(["^a", "b$", "^[a-z]+$", "\\d", "x{3}"]),
    "required": st.lists(st.sampled_from(["a", "b", "k"]), max_size=3, unique=True),
    "additionalProperties": st.just(False),
    "properties": st.just({"a": {"type": "integer"}, "k": {"minLength": 2}}),
}


@pytest.mark.slow  # fuzz: generated instances
@pytest.mark.parametrize("keyword", sorted(KEYWORDS))
@settings(FUZZ, max_examples=max(10, FUZZ.max_examples // 4))
@given(data=st.data(), instance=json_values, nest=st.booleans())
def test_each_rebuilt_keyword_words_its_error_as_jsonschema_does(
    keyword: str, data: st.DataObject, instance: Any, nest: bool
) -> None:
    others = data.draw(st.lists(st.sampled_from(sorted(KEYWORDS)), max_size=2), label="others")
    schema = {key: data.draw(KEYWORDS[key], label=key) for key in [keyword, *others]}
    if nest:  # behind a $ref and a property: paths and locations through both
        schema = {"$defs": {"d": schema}, "properties": {"p": {"$ref": "#/$defs/d"}}}
        instance = {"p": instance}
    validator = schema_rs.compile_validator(schema)
    expected = sorted(
        (list(err.absolute_path), err.message)
        for err in Draft202012Validator(schema).iter_errors(instance)
    )
    assert validator.is_valid(instance) == (not expected)
    found = schema_rs.violations(validator, schema, instance)
    assert found is not None  # every keyword here is one jsonschema-rs's errors are rebuilt for
    assert sorted((list(v.absolute_path), v.message) for v in found) == expected


@pytest.mark.slow  # fuzz: hundreds of mutated corpus files
@pytest.mark.skipif(not CORPUS_TEXTS, reason="corpus not available")
@FUZZ
@given(data=st.data())
def test_mutated_corpus_documents_get_the_same_answers(
    runtimes: tuple[Runtime, Runtime], data: st.DataObject
) -> None:
    document = yaml.safe_load(data.draw(st.sampled_from(CORPUS_TEXTS), label="file"))
    workflow = document.get("workflow") if isinstance(document, dict) else None
    steps = workflow.get("steps") if isinstance(workflow, dict) else None
    if isinstance(steps, list) and steps:
        index = data.draw(st.integers(0, len(steps) - 1), label="step")
        if isinstance(steps[index], dict) and steps[index]:
            key = data.draw(st.sampled_from(sorted(steps[index], key=str)), label="key")
            steps[index][key] = data.draw(trees, label="replacement")
    for runtime in runtimes:
        assert_same_answers(runtime.configuration, load_yaml(yaml.safe_dump(document), "w.yaml"))


def test_errors_keep_file_path_line_and_jsonschema_words() -> None:
    text = (
        "workflow:\n"
        "  name: 3\n"
        "  steps:\n"
        "    - name: a\n"
        "      type: claude\n"
        "      max_parallel: 0\n"
        "      prompt: just text\n"
        "    - type: claude\n"
    )
    with Runtime() as runtime, pytest.raises(SchemaValidationError) as info:
        runtime.configuration.validate(load_yaml(text, "bad.yaml"))
    assert _seen(info.value.problems) == [
        ("workflow.name", 2, "expected string, found integer 3"),
        ("workflow.steps[0].max_parallel", 6, "0 is less than the minimum of 1"),
        ("workflow.steps[0].prompt", 7, "expected array, found string 'just text'"),
        ("workflow.steps[1]", 8, "'name' is a required property"),
    ]
    assert all(p.location.file == "bad.yaml" for p in info.value.problems)


def test_a_valid_document_never_imports_the_explaining_validator(tmp_path: Path) -> None:
    """jsonschema is for explaining invalid documents only (checked in a fresh process)."""
    import subprocess
    import sys

    workflow = tmp_path / "ok.yaml"
    workflow.write_text(
        "workflow:\n  name: ok\n  steps:\n    - name: a\n      type: test_echo\n"
        "      output_schema: {type: string}\n      value: fine\n"
    )
    code = (
        "import sys\n"
        "from pipeline_ex.configuration import ConfigurationSystem\n"
        "from pipeline_ex.documents import load_yaml_file\n"
        "from pipeline_ex.builtin.schema_validator import OUTPUT_SCHEMA_EXTENSION\n"
        "c = ConfigurationSystem()\n"
        "c.register_extensions({'output_schema': OUTPUT_SCHEMA_EXTENSION}, 'p')\n"
        "before = 'jsonschema.validators' in sys.modules\n"
        f"c.validate(load_yaml_file({str(workflow)!r}))\n"
        "assert ConfigurationSystem.output_problems({'type': 'string'}, 'x') == []\n"
        "print(before, 'jsonschema.validators' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = out.stdout.split()
    assert after == before  # validation itself imported nothing of jsonschema's


def test_anyof_failures_are_explained_by_jsonschema_with_their_extension() -> None:
    one = {"properties": {"workflow": {"properties": {"mode": {"anyOf": [{"type": "string"}]}}}}}
    config = ConfigurationSystem()
    config.register_extensions({"modes": one}, "p")
    document = {"workflow": {"name": "w", "steps": [{"name": "a", "type": "t"}], "mode": 1}}
    with pytest.raises(SchemaValidationError) as info:
        config.validate(document)
    (problem,) = info.value.problems
    assert problem.location.path == "workflow.mode"
    assert "is not valid under any of the given schemas" in problem.message  # jsonschema's
    assert "schema extension 'modes' of plugin 'p'" in problem.message


def test_data_that_is_not_plain_json_is_judged_by_jsonschema() -> None:
    nan_content = {"type": "static", "content": float("nan")}
    document = {"workflow": {"name": "w", "steps": [{"name": "a", "type": "t"}]}}
    document["workflow"]["steps"][0]["prompt"] = [nan_content]
    assert not schema_rs.is_plain_json(document)
    ConfigurationSystem().validate(document)  # jsonschema-rs alone would read NaN as null
    assert not jsonschema_rs.is_valid({"type": "number"}, float("nan"))
    for odd in (float("inf"), (1, 2), {1: "x"}, b"x", {1}, True.__class__):
        assert not schema_rs.is_plain_json({"a": [odd]})
    assert schema_rs.is_plain_json({"a": [1, 1.5, "x", None, True, {"b": []}]})


def test_a_present_property_refused_by_additional_properties_is_not_also_missing() -> None:
    """Found by the keyword fuzz: jsonschema-rs 0.61 reports ``'b' is a required property``
    for an object that has ``b`` when ``additionalProperties: false`` refuses ``b``."""
    schema = {
        "additionalProperties": False,
        "properties": {"a": {"type": "integer"}},
        "required": ["b"],
    }
    instance = {"a": None, "b": None}
    expected = sorted(
        (list(err.absolute_path), err.message)
        for err in Draft202012Validator(schema).iter_errors(instance)
    )
    found = schema_rs.violations(schema_rs.compile_validator(schema), schema, instance)
    assert found is not None
    assert sorted((list(v.absolute_path), v.message) for v in found) == expected
