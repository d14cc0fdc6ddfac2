"""``pipeline-ex convert``: the CLI side of the ``json_yaml_bridge`` plugin."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import Result

pytest.importorskip("pipeline_ex.builtin.json_yaml_bridge")

Invoke = Callable[..., Result]
Write = Callable[[str, str], Path]


def test_yaml_to_json_and_back_preserves_types(cli: Invoke, write: Write, tmp_path: Path) -> None:
    source = write(
        "data.yaml",
        """
        name: demo
        count: 3
        ratio: 0.5
        enabled: true
        nothing: null
        tags: [a, b]
    """,
    )
    as_json = tmp_path / "data.json"
    result = cli("convert", source, as_json)
    assert result.exit_code == 0, result.stderr
    data = json.loads(as_json.read_text())
    assert data == {
        "name": "demo",
        "count": 3,
        "ratio": 0.5,
        "enabled": True,
        "nothing": None,
        "tags": ["a", "b"],
    }
    back = tmp_path / "back.yml"
    assert cli("convert", as_json, back).exit_code == 0
    assert yaml.safe_load(back.read_text()) == data


def test_schema_violation_is_exit_2(cli: Invoke, write: Write, tmp_path: Path) -> None:
    source = write("data.yaml", "name: demo\n")
    schema = write("schema.json", '{"type": "object", "required": ["version"]}')
    result = cli("convert", source, tmp_path / "out.json", "--schema", schema)
    assert result.exit_code == 2
    assert "'version' is a required property" in result.stderr
    assert result.stderr.startswith("error [")
    assert not (tmp_path / "out.json").exists()


def test_unknown_extension_is_exit_2(cli: Invoke, write: Write, tmp_path: Path) -> None:
    source = write("data.yaml", "a: 1\n")
    result = cli("convert", source, tmp_path / "out.txt")
    assert result.exit_code == 2
    assert "error [" in result.stderr and ".txt" in result.stderr


def test_malformed_input_is_exit_2(cli: Invoke, write: Write, tmp_path: Path) -> None:
    source = write("bad.json", '{"a": ')
    result = cli("convert", source, tmp_path / "out.yaml")
    assert result.exit_code == 2
    assert "bad.json" in result.stderr
    assert "Traceback" not in result.stderr
