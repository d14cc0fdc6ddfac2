"""Fixtures for the DSPy plugin tests: a scratch working directory (the default cache lives
under it), plugin configs with training data, and runtimes that load them."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The fake Anthropic/Gemini server lives beside the live-provider tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "providers"))

from dspy_helpers import capitals_jsonl
from fake_llm_server import CLAUDE_KEY, GEMINI_KEY, FakeLLMServer

from pipeline_ex import Runtime


@pytest.fixture(autouse=True)
def _scratch_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def plugin_config(tmp_path: Path) -> Callable[..., Path]:
    """``plugin_config(**config)``: a plugin config naming dspy_plugin with ``config``
    (training data in ``training_data/capitals.jsonl`` beside it unless told otherwise)."""

    def _make(training: str | None = capitals_jsonl(), **config: Any) -> Path:
        import yaml

        folder = tmp_path / "conf"
        (folder / "training_data").mkdir(parents=True, exist_ok=True)
        if training is not None:
            (folder / "training_data" / "capitals.jsonl").write_text(training, encoding="utf-8")
        settings = {"training_data_path": "training_data/", **config}
        path = folder / "plugin_config.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "plugins": {
                        "dspy_plugin": {"module": "Pipeline.Plugins.DSPyPlugin", "config": settings}
                    }
                }
            ),
            encoding="utf-8",
        )
        return path

    return _make


@pytest.fixture
def runtimes() -> Iterator[Callable[..., Runtime]]:
    """``runtimes(config_path, mode=...)``: Runtimes closed at the end of the test."""
    made: list[Runtime] = []

    def _make(config: Any, **kwargs: Any) -> Runtime:
        runtime = Runtime(plugin_config=config, **kwargs)
        made.append(runtime)
        return runtime

    yield _make
    for runtime in made:
        runtime.close()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_env(fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CLAUDE_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.url)
    monkeypatch.setenv("GEMINI_BASE_URL", fake_llm.url)
    return fake_llm
