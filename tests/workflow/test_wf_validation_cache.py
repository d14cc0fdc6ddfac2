"""The validation cache of a Runtime (issue 12): a document that passed is not validated
again until its content, the schema extensions or the step types change."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import SchemaValidationError, WorkflowSemanticError
from pipeline_ex.workflow import validation
from pipeline_ex.workflow.validation_cache import ValidationCache, content_digest

DOCUMENT = {
    "workflow": {
        "name": "cached",
        "steps": [
            {"name": "a", "type": "test_echo", "value": 1},
            {"name": "b", "type": "claude", "prompt": [{"type": "static", "content": "hi"}]},
        ],
    }
}


class Counting:
    """Counts full validations (the cache's misses that went on to validate)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = validation._validate

        def counted(*args: Any) -> None:
            self.calls += 1
            real(*args)

        monkeypatch.setattr(validation, "_validate", counted)


@pytest.fixture
def rt() -> Iterator[Runtime]:
    with Runtime() as runtime:
        yield runtime


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Counting:
    return Counting(monkeypatch)


def extension_plugin(name: str, fragment: dict[str, Any]) -> type:
    class ExtensionPlugin:
        def init(self, config: Any) -> Any:
            return None

        def get_metadata(self, state: Any) -> dict[str, Any]:
            return {"name": name, "version": "1.0", "api_version": 1}

        def get_schema_extensions(self, state: Any) -> Any:
            return [(f"{name}_ext", fragment)]

    return ExtensionPlugin


def step_plugin(name: str, step_type: str) -> type:
    class Step:
        def execute(self, step: dict[str, Any], context: Any) -> Any:
            return "ran"

    class StepPlugin:
        def init(self, config: Any) -> Any:
            return None

        def get_metadata(self, state: Any) -> dict[str, Any]:
            return {"name": name, "version": "1.0", "api_version": 1}

        def get_step_types(self, state: Any) -> Any:
            return [(step_type, Step)]

    return StepPlugin


def test_a_repeat_is_a_hit_and_a_change_is_a_miss(rt: Runtime, counting: Counting) -> None:
    cache = rt.executor.validation_cache
    rt.validate(DOCUMENT)
    rt.validate(DOCUMENT)
    rt.validate(copy.deepcopy(DOCUMENT))  # equal content, other objects
    assert counting.calls == 1
    assert (cache.stats().hits, cache.stats().misses) == (2, 1)
    changed = copy.deepcopy(DOCUMENT)
    changed["workflow"]["steps"][0]["value"] = 2
    rt.validate(changed)
    assert counting.calls == 2
    assert cache.stats().size == 2


def test_runs_of_a_file_validate_it_once(rt: Runtime, counting: Counting, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(DOCUMENT))
    rt.validate(path)
    for _ in range(3):
        results = rt.run(path, output_dir=tmp_path / "out")
        assert results["a"] == 1
    assert counting.calls == 1


def test_a_mapping_mutated_between_runs_is_validated_again(rt: Runtime, counting: Counting) -> None:
    document = copy.deepcopy(DOCUMENT)
    rt.validate(document)
    document["workflow"]["steps"][1]["prompt"] = "not a list"
    with pytest.raises(SchemaValidationError):
        rt.validate(document)
    assert counting.calls == 2


def test_refused_documents_are_not_remembered(rt: Runtime, counting: Counting) -> None:
    bad = {"workflow": {"name": "bad", "steps": [{"name": "a", "type": "no_such_type"}]}}
    for _ in range(2):
        with pytest.raises(WorkflowSemanticError):
            rt.validate(bad)
    assert counting.calls == 2
    assert rt.executor.validation_cache.stats().size == 0


def test_loading_and_unloading_a_schema_extension_invalidates(
    rt: Runtime, counting: Counting
) -> None:
    required = {"properties": {"workflow": {"required": ["owner"]}}}
    rt.validate(DOCUMENT)
    version = rt.configuration.version
    rt.plugins.load_plugin("owners", extension_plugin("owners", required))
    assert rt.configuration.version > version
    with pytest.raises(SchemaValidationError, match="'owner' is a required property"):
        rt.validate(DOCUMENT)  # not a hit: the schema changed under the same content
    rt.plugins.unload_plugin("owners")
    rt.validate(DOCUMENT)  # the schema changed back, under a new version: validated again
    rt.validate(DOCUMENT)
    assert counting.calls == 3


def test_reloading_a_schema_extension_invalidates(rt: Runtime, counting: Counting) -> None:
    loose = {"properties": {"workflow": {"properties": {"tag": {"type": "string"}}}}}
    strict = {"properties": {"workflow": {"properties": {"tag": {"maxLength": 2}}}}}
    document = {"workflow": {**DOCUMENT["workflow"], "tag": "long"}}
    rt.plugins.load_plugin("tags", extension_plugin("tags", loose))
    rt.validate(document)
    rt.configuration.register_extensions({"tags_ext": strict}, "tags", swap=True)
    with pytest.raises(SchemaValidationError, match="too long"):
        rt.validate(document)
    assert counting.calls == 2


def test_step_types_coming_and_going_invalidate(rt: Runtime, counting: Counting) -> None:
    document = {"workflow": {"name": "w", "steps": [{"name": "a", "type": "brand_new"}]}}
    with pytest.raises(WorkflowSemanticError, match="unknown step type 'brand_new'"):
        rt.validate(document)
    rt.plugins.load_plugin("newer", step_plugin("newer", "brand_new"))
    rt.validate(document)
    rt.validate(document)
    rt.plugins.unload_plugin("newer")
    with pytest.raises(WorkflowSemanticError, match="unknown step type 'brand_new'"):
        rt.validate(document)
    assert counting.calls == 3


def test_output_dir_is_checked_on_every_hit(rt: Runtime, tmp_path: Path) -> None:
    """Where output_dir leads depends on the file system, not on the content."""
    import yaml

    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "out").mkdir()
    path = folder / "wf.yaml"
    path.write_text(yaml.safe_dump({"workflow": {**DOCUMENT["workflow"], "output_dir": "out"}}))
    rt.validate(path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "out").rmdir()
    os.symlink(outside, folder / "out")  # swapped for a way out since it passed
    with pytest.raises(WorkflowSemanticError, match="output_dir"):
        rt.validate(path)
    assert rt.executor.validation_cache.stats().hits == 1


def test_the_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = ValidationCache(maxsize=2)
    keys = [cache.key({"n": n}, 0, 0) for n in range(3)]
    assert all(key is not None for key in keys)
    first, second, third = (k for k in keys if k is not None)
    cache.remember(first)
    cache.remember(second)
    assert cache.passed(first)  # now the most recently used
    cache.remember(third)
    assert cache.stats().size == 2
    assert cache.passed(first) and cache.passed(third)
    assert not cache.passed(second)
    assert cache.stats() == type(cache.stats())(hits=3, misses=1, size=2, maxsize=2)
    disabled = ValidationCache(maxsize=0)
    disabled.remember(first)
    assert not disabled.passed(first)


def test_each_runtime_has_its_own_cache(counting: Counting) -> None:
    with Runtime() as one, Runtime() as two:
        one.validate(DOCUMENT)
        two.validate(DOCUMENT)
    assert counting.calls == 2


def test_the_digest_tells_apart_what_validation_tells_apart() -> None:
    same = [{"a": [1, "x"]}, {"a": [1, "x"]}]
    assert content_digest(same[0]) == content_digest(same[1])
    distinct = [{"a": 1}, {"a": 1.0}, {"a": True}, {"a": "1"}, {"a": [1]}, {"a": (1,)}, {"b": 1}]
    digests = {content_digest(value) for value in distinct}
    assert len(digests) == len(distinct)
    import datetime

    assert content_digest({"a": datetime.date(2020, 1, 1)}) is None  # not cached, validated


def test_the_digest_does_not_depend_on_who_else_holds_the_content() -> None:
    data = copy.deepcopy(DOCUMENT)
    before = content_digest(data)
    held = data["workflow"]["name"], data["workflow"]["steps"][1]["prompt"]
    assert content_digest(data) == before
    assert held  # still referenced while the second digest was taken
