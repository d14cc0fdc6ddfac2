"""``pipeline_ex.cli.plain_table`` draws the listing tables for a pipe exactly as rich does,
and leaves to rich every table it cannot be sure of."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_ex.cli import listings, plain_table, render


class Pipe(io.StringIO):
    """What a redirected stdout looks like to rich: UTF-8, not a terminal."""

    encoding = "utf-8"


def _by_rich(kind: str, cells: list[tuple[str, str, str]], monkeypatch: pytest.MonkeyPatch) -> str:
    rows: list[dict[str, Any]] = [
        {"name": n, "plugin": p, "description": d, "capabilities": d.split(", ") if d else []}
        for n, p, d in cells
    ]
    table = render.steps_table(rows) if kind == "steps" else render.providers_table(rows)
    out = Pipe()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdout", out)
        render.stdout_console().print(table)
    return out.getvalue()


def _layout(kind: str) -> tuple[str, tuple[str, ...]]:
    return listings.STEPS_TABLE if kind == "steps" else listings.PROVIDERS_TABLE


@pytest.fixture(autouse=True)
def _no_rich_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in plain_table.RICH_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


ASCII = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=90)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["steps", "providers"]),
    cells=st.lists(st.tuples(ASCII, ASCII, ASCII), min_size=1, max_size=6),
)
def test_what_it_draws_is_what_rich_draws(
    kind: str, cells: list[tuple[str, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "providers":  # capabilities are joined names
        cells = [(n, p, ", ".join(c for c in d.split(", ") if c)) for n, p, d in cells]
    drawn = plain_table.render(*_layout(kind), cells, Pipe())
    if drawn is not None:
        assert drawn == _by_rich(kind, cells, monkeypatch)


def test_the_built_in_listing_is_drawn_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    cells = [("claude", "core_steps", "Asks Claude."), ("test_echo", "core_steps", "")]
    drawn = plain_table.render(*_layout("steps"), cells, Pipe())
    assert drawn is not None and drawn == _by_rich("steps", cells, monkeypatch)


@pytest.mark.parametrize(
    "cells",
    [
        [("claude", "core_steps", "a description\nwith two lines")],
        [("claude", "core_steps", "déjà vu")],
        [("claude", "core_steps", "wide 表")],
        [("claude", "core_steps", " padded ")],
        [("claude", "core_steps", "x" * 200)],  # rich would wrap the description
        [],
    ],
)
def test_tables_it_cannot_be_sure_of_are_left_to_rich(cells: list[tuple[str, str, str]]) -> None:
    assert plain_table.render(*_layout("steps"), cells, Pipe()) is None


def test_a_terminal_or_rich_settings_are_left_to_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    cells = [("claude", "core_steps", "Asks Claude.")]

    class Terminal(Pipe):
        def isatty(self) -> bool:
            return True

    class Latin1(Pipe):
        encoding = "latin-1"

    assert plain_table.render(*_layout("steps"), cells, Terminal()) is None
    assert plain_table.render(*_layout("steps"), cells, Latin1()) is None
    assert plain_table.render(*_layout("steps"), cells, None) is None
    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"):
        with monkeypatch.context() as patch:
            patch.setenv(name, "100")
            assert plain_table.render(*_layout("steps"), cells, Pipe()) is None
    assert plain_table.render(*_layout("steps"), cells, Pipe()) is not None
