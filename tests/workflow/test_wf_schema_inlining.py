"""Inlined ``$ref``s validate exactly like the schema they came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pipeline_ex import Runtime
from pipeline_ex.configuration import inline_local_refs
from pipeline_ex.documents import load_yaml_file

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "pipeline_ex_corpus"


def _errors(schema: dict[str, Any], instance: Any) -> list[tuple[list[Any], str]]:
    return sorted(
        (list(e.absolute_path), e.message)
        for e in Draft202012Validator(schema).iter_errors(instance)
    )


def _nested(depth: int, bad: bool) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "name": "leaf",
        "type": "test_echo",
        "prompt": [{"type": "static", "content": [1] if bad else "x"}],
    }
    for level in range(depth):
        inner = {
            "name": f"loop{level}",
            "type": "for_loop",
            "iterator": "i",
            "data_source": [1],
            "steps": [inner],
        }
    return {"workflow": {"name": "deep", "steps": [inner]}}


@pytest.fixture(scope="module")
def schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    schema = Runtime().configuration.compiled_schema()
    return schema, inline_local_refs(schema)


@pytest.mark.parametrize("depth", [0, 1, 2, 5])
@pytest.mark.parametrize("bad", [False, True])
def test_recursive_definitions_still_validate_at_any_depth(
    schemas: tuple[dict[str, Any], dict[str, Any]], depth: int, bad: bool
) -> None:
    original, inlined = schemas
    document = _nested(depth, bad)
    assert _errors(inlined, document) == _errors(original, document)
    assert bool(_errors(inlined, document)) is bad


def test_local_refs_are_gone_except_recursive_tails(
    schemas: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _, inlined = schemas
    text = repr({k: v for k, v in inlined.items() if k != "$defs"})
    assert "#/$defs/prompt" not in text  # plain definitions fully inlined
    assert text.count("#/$defs/steps") == 1  # the loop body, unrolled once


@pytest.mark.skipif(not CORPUS.is_dir(), reason="pipeline_ex corpus not present")
def test_same_errors_on_every_corpus_file(schemas: tuple[dict[str, Any], dict[str, Any]]) -> None:
    original, inlined = schemas
    for path in sorted(CORPUS.glob("*.yaml")):
        data = load_yaml_file(path).data
        assert _errors(inlined, data) == _errors(original, data), path.name
