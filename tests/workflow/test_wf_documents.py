"""documents.py: safe, bounded YAML loading with a line map."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from pipeline_ex import Runtime, documents
from pipeline_ex.documents import Document, format_path, load_yaml, load_yaml_file, require_mapping
from pipeline_ex.errors import DocumentError, InvalidInputError, YAMLDocumentError

WORKFLOW = """\
# a comment
workflow:
  name: lines
  steps:
    - name: first
      type: test_echo
      value: 1
    - name: second
      type: claude
      prompt:
        - type: static
          content: hello
"""


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": width**levels leaves from a few hundred bytes."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


class TestLineMap:
    def test_every_path_has_its_line(self) -> None:
        doc = load_yaml(WORKFLOW, "wf.yaml")
        assert doc.line_of(("workflow",)) == 2
        assert doc.line_of(("workflow", "name")) == 3
        assert doc.line_of(("workflow", "steps", 0)) == 5
        assert doc.line_of(("workflow", "steps", 0, "type")) == 6
        assert doc.line_of(("workflow", "steps", 1, "prompt", 0, "content")) == 12

    def test_unknown_path_falls_back_to_nearest_ancestor(self) -> None:
        doc = load_yaml(WORKFLOW, "wf.yaml")
        assert doc.line_of(("workflow", "steps", 1, "no_such_key", 3)) == 8

    def test_location_names_file_path_and_line(self) -> None:
        doc = load_yaml(WORKFLOW, "wf.yaml")
        location = doc.location(("workflow", "steps", 1, "prompt", 0, "type"))
        assert location.file == "wf.yaml"
        assert location.path == "workflow.steps[1].prompt[0].type"
        assert location.line == 11
        assert str(location) == "wf.yaml:11 at workflow.steps[1].prompt[0].type"

    def test_format_path(self) -> None:
        assert format_path(("workflow", "steps", 2, "prompt", 0, "step")) == (
            "workflow.steps[2].prompt[0].step"
        )
        assert format_path(()) == ""

    def test_data_is_plain(self) -> None:
        doc = load_yaml(WORKFLOW)
        assert doc.data["workflow"]["steps"][1]["prompt"] == [
            {"type": "static", "content": "hello"}
        ]

    def test_file_is_read_and_located(self, tmp_path: Path) -> None:
        path = tmp_path / "w.yaml"
        path.write_text(WORKFLOW)
        doc = load_yaml_file(path)
        assert doc.file == str(path)
        assert doc.base_dir == tmp_path.resolve()

    def test_missing_file_is_a_typed_error(self, tmp_path: Path) -> None:
        with pytest.raises(YAMLDocumentError, match="cannot read file"):
            load_yaml_file(tmp_path / "absent.yaml")


class TestUnsafeInputIsRefused:
    @pytest.mark.parametrize(
        "text",
        [
            "!!python/object/apply:os.system ['touch {marker}']",
            "workflow: !!python/object/apply:os.system ['touch {marker}']",
            "a: !!python/name:os.system",
            "a: !!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        ],
    )
    def test_python_tags_are_refused_and_never_run(self, tmp_path: Path, text: str) -> None:
        marker = tmp_path / "marker"
        with pytest.raises(YAMLDocumentError) as info:
            load_yaml(text.format(marker=marker), "evil.yaml")
        assert info.value.code == "yaml_invalid"
        assert "python/" in str(info.value)
        assert "refused" in str(info.value)
        assert info.value.problems[0].location.line == 1
        assert not marker.exists()

    def test_python_tag_through_runtime_is_invalid_input(
        self, runtime: Runtime, tmp_path: Path
    ) -> None:
        marker = tmp_path / "marker"
        path = tmp_path / "evil.yaml"
        path.write_text(
            "workflow:\n  name: x\n  steps:\n"
            f"    - !!python/object/apply:os.system ['touch {marker}']\n"
        )
        with pytest.raises(InvalidInputError) as info:
            runtime.run(path)
        assert isinstance(info.value, YAMLDocumentError)
        assert str(path) in str(info.value)
        assert ":4" in str(info.value)
        assert not marker.exists()

    def test_unknown_local_tag_is_refused(self) -> None:
        with pytest.raises(YAMLDocumentError, match="custom"):
            load_yaml("a: !custom 3")

    def test_alias_bomb_is_refused_within_a_memory_bound(self) -> None:
        text = alias_bomb()  # 9**9 = 387 million leaves if expanded
        assert len(text) < 1000
        tracemalloc.start()
        try:
            with pytest.raises(YAMLDocumentError) as info:
                load_yaml(text, "bomb.yaml")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert "alias bomb" in str(info.value)
        assert "bomb.yaml" in str(info.value)
        assert peak < 2 * 1024 * 1024, f"peak {peak} bytes while refusing a 400-byte document"

    def test_alias_bomb_through_runtime(self, runtime: Runtime, tmp_path: Path) -> None:
        path = tmp_path / "bomb.yaml"
        path.write_text(
            "workflow:\n  name: bomb\n  steps:\n    - name: a\n      type: test_echo\n"
            + "".join("      " + line + "\n" for line in ("value:",))
            + "".join("        " + line + "\n" for line in alias_bomb().splitlines())
        )
        tracemalloc.start()
        try:
            with pytest.raises(YAMLDocumentError, match="alias bomb"):
                runtime.run(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 * 1024 * 1024

    def test_moderate_aliases_are_fine(self) -> None:
        anchor = "a: &a [" + ", ".join(["x"] * 100) + "]\n"
        refs = "b: [" + ", ".join(["*a"] * 100) + "]\n"  # 10 000 leaves: under budget
        doc = load_yaml(anchor + refs)
        assert len(doc.data["b"]) == 100
        assert doc.data["b"][99][99] == "x"

    def test_just_over_the_node_budget_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(documents, "MAX_NODES", 1000)
        anchor = "a: &a [" + ", ".join(["x"] * 40) + "]\n"
        load_yaml(anchor + "b: [" + ", ".join(["*a"] * 20) + "]\n")  # ~900 nodes
        with pytest.raises(YAMLDocumentError, match="1000 nodes"):
            load_yaml(anchor + "b: [" + ", ".join(["*a"] * 30) + "]\n")

    @pytest.mark.parametrize("text", ["a: &a [*a]", "&a {x: *a}", "a: &a {b: [1, {c: *a}]}"])
    def test_recursive_alias_is_refused(self, text: str) -> None:
        with pytest.raises(YAMLDocumentError, match="recursive alias"):
            load_yaml(text)

    @pytest.mark.parametrize("depth", [201, 1000, 50_000])
    def test_deep_flow_nesting_is_refused(self, depth: int) -> None:
        with pytest.raises(YAMLDocumentError, match="nested deeper than 200"):
            load_yaml("[" * depth + "]" * depth)

    def test_deep_block_nesting_is_refused_with_its_line(self) -> None:
        text = "".join("  " * level + f"k{level}:\n" for level in range(300)) + "  " * 300 + "v"
        with pytest.raises(YAMLDocumentError, match="nested deeper") as info:
            load_yaml(text)
        line = info.value.problems[0].location.line
        assert line is not None and 195 <= line <= 205

    def test_nesting_under_the_limit_is_fine(self) -> None:
        doc = load_yaml("[" * 150 + "1" + "]" * 150)
        value = doc.data
        for _ in range(150):
            value = value[0]
        assert value == 1

    def test_oversized_text_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(documents, "MAX_BYTES", 100)
        with pytest.raises(YAMLDocumentError, match="larger than 100 bytes"):
            load_yaml("a: " + "x" * 200)


class TestShape:
    @pytest.mark.parametrize(
        ("text", "found"),
        [("- a\n- b\n", "list"), ("just text", "str"), ("42", "int"), ("", "an empty document")],
    )
    def test_non_mapping_root_is_refused(
        self, runtime: Runtime, tmp_path: Path, text: str, found: str
    ) -> None:
        path = tmp_path / "w.yaml"
        path.write_text(text)
        with pytest.raises(YAMLDocumentError, match="must be a mapping") as info:
            runtime.run(path)
        assert found in str(info.value)
        assert str(path) in str(info.value)

    def test_require_mapping(self) -> None:
        assert require_mapping(load_yaml("a: 1"), "x") == {"a": 1}
        with pytest.raises(YAMLDocumentError):
            require_mapping(Document([1]), "a config")

    def test_syntax_error_names_line(self) -> None:
        with pytest.raises(YAMLDocumentError) as info:
            load_yaml("a: 1\nb: [1, 2\nc: 3\n", "broken.yaml")
        problem = info.value.problems[0]
        assert problem.location.file == "broken.yaml"
        assert problem.location.line in (2, 3, 4)
        assert "invalid YAML" in problem.message

    def test_errors_are_document_errors(self) -> None:
        assert issubclass(YAMLDocumentError, DocumentError)
        assert issubclass(YAMLDocumentError, InvalidInputError)

    @pytest.mark.parametrize(
        "text", ["? [1, 2]\n: 3\n", "a: [", "\t- x", "a: b: c", "%YAML 9.9\n---\na: 1\n"]
    )
    def test_malformed_yaml_is_typed(self, text: str) -> None:
        with pytest.raises(YAMLDocumentError):
            load_yaml(text)

    def test_multiple_documents_are_refused(self) -> None:
        with pytest.raises(YAMLDocumentError):
            load_yaml("a: 1\n---\nb: 2\n")


class TestMappingSources:
    """A mapping handed to ``run`` gets the same budgets as a YAML file."""

    @staticmethod
    def wrap(value: object) -> dict[str, object]:
        return {
            "workflow": {"name": "m", "steps": [{"name": "a", "type": "test_echo", "value": value}]}
        }

    def test_too_deep(self, runtime: Runtime) -> None:
        value: list[object] = []
        for _ in range(3000):
            value = [value]
        with pytest.raises(DocumentError, match="nested deeper than 200"):
            runtime.run(self.wrap(value))

    def test_cycle(self, runtime: Runtime) -> None:
        cyclic: dict[str, object] = {}
        cyclic["self"] = cyclic
        with pytest.raises(DocumentError, match="cycle"):
            runtime.run(self.wrap(cyclic))

    def test_too_many_values(self, runtime: Runtime) -> None:
        row = list(range(1000))
        with pytest.raises(DocumentError, match="more than 200000 values"):
            runtime.run(self.wrap([row] * 300))

    def test_shared_sub_structures_are_fine(self, runtime: Runtime, tmp_path: Path) -> None:
        shared = [1, 2]
        results = runtime.run(self.wrap([shared, shared]), output_dir=tmp_path)
        assert results["a"] == [[1, 2], [1, 2]]
