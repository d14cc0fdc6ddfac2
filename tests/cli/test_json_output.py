"""``print_json`` writes what click's ``echo`` would, without importing typer when stdout
is a plain UTF-8 stream, and leaves every other stream to click."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
import typer

from pipeline_ex import results_json
from pipeline_ex.cli import json_output

DOCUMENTS: list[Any] = [
    [{"name": "claude", "plugin": "core_steps", "description": ""}],
    {"text": "déjà vu 表 \x1b[31m", "n": float("nan"), "nested": [1, 2.5, None, True]},
    "plain",
    {"path": "caf\udce9"},  # a lone surrogate (an undecodable file name)
]


def _capture(
    monkeypatch: pytest.MonkeyPatch,
    write: Any,
    encoding: str = "utf-8",
    errors: str = "surrogateescape",  # what a C.UTF-8 locale gives stdout
) -> bytes:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding=encoding, errors=errors, newline="\n")
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdout", stream)
        write()
    stream.flush()
    return raw.getvalue()


@pytest.mark.parametrize("document", DOCUMENTS)
def test_same_bytes_as_click_echo(document: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _capture(monkeypatch, lambda: json_output.print_json(document))
    clicks = _capture(monkeypatch, lambda: typer.echo(results_json.dumps(document)))
    assert ours == clicks


def test_other_streams_go_through_click(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(typer, "echo", lambda text: calls.append(text))
    _capture(monkeypatch, lambda: json_output.print_json({"a": "é"}), encoding="latin-1")
    assert calls == [results_json.dumps({"a": "é"})]
