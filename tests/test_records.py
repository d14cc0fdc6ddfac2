"""pipeline_ex.records: what the hand-written records keep of ``@dataclass(frozen=True)``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_ex.documents import Document
from pipeline_ex.plugins.loader import PluginSpec
from pipeline_ex.plugins.metadata import Dependency, parse_dependency
from pipeline_ex.plugins.registry import Components, PluginRecord, PluginStatus


def test_a_record_is_immutable() -> None:
    spec = PluginSpec("demo", module="demo_mod")
    with pytest.raises(AttributeError, match="immutable"):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del spec.module
    assert spec.name == "demo"


def test_equality_and_hash_follow_the_compared_fields() -> None:
    a = PluginSpec("demo", module="m", config={"k": 1}, lines={(): 3})
    b = PluginSpec("demo", module="m", config={"k": 1}, lines={(): 9})
    assert a == b  # lines take no part in equality (compare=False before)
    assert a != PluginSpec("demo", module="m", config={"k": 2})
    assert a != ("demo", "m")  # never equal to a tuple of the same values
    first = Dependency("csv", sources=(("config", ">=1"),))
    second = Dependency("csv", sources=(("get_metadata", ">=1"),))
    assert first == second and hash(first) == hash(second)
    assert parse_dependency("csv>=1.0", plugin="p") != parse_dependency("csv>=2.0", plugin="p")
    assert {Components(("a",)), Components(("a",))} == {Components(("a",))}


def test_replace_copies_with_changes_and_refuses_unknown_fields() -> None:
    spec = PluginSpec("demo", module="m", enabled=False)
    again = spec.replace(enabled=True)
    assert (again.enabled, again.module, spec.enabled) == (True, "m", False)
    with pytest.raises(TypeError, match="no field"):
        spec.replace(colour="red")


def test_defaults_are_fresh_per_record() -> None:
    one, two = PluginSpec("a"), PluginSpec("b")
    assert one.config == {} and one.config is not two.config
    record = PluginRecord("a", PluginStatus.ACTIVE, "module:a")
    assert record.config == {} and record.components == Components()
    assert not record.components
    assert record.evolve(version="2.0").version == "2.0"


def test_repr_names_every_field() -> None:
    assert repr(Components(("s",))) == (
        "Components(step_types=('s',), providers=(), schema_extensions=())"
    )
    assert "path=PosixPath" in repr(PluginSpec("d", path=Path("/x")))


def test_a_mutable_record_compares_by_value_and_is_not_hashable() -> None:
    doc = Document({"a": 1}, "w.yaml")
    assert doc == Document({"a": 1}, "w.yaml", {})
    doc.lines[("a",)] = 2
    assert doc != Document({"a": 1}, "w.yaml")
    with pytest.raises(TypeError):
        hash(doc)


def test_records_copy_pickle_and_match_like_the_dataclasses_they_replace() -> None:
    import copy
    import pickle

    spec = PluginSpec("demo", module="m", config={"a": [1]}, lines={(): 4})
    for clone in (copy.copy(spec), copy.deepcopy(spec), pickle.loads(pickle.dumps(spec))):
        assert clone == spec and clone.lines == {(): 4}
    record = PluginRecord("demo", PluginStatus.ACTIVE, "module:m", spec=spec)
    assert pickle.loads(pickle.dumps(record)) == record
    match spec:
        case PluginSpec("demo", "m"):
            matched = True
        case _:
            matched = False
    assert matched
