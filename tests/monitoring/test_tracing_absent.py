"""Tracing is off, and costs nothing, when the ``otel`` extra is not installed."""

from __future__ import annotations

import builtins
from typing import Any

import pytest
from monitoring_samples import AsksProvider, Echo, plugin

from pipeline_ex import Runtime

RUN = {"workflow": {"name": "traced", "steps": [{"name": "q", "type": "ask", "provider": "echo"}]}}


def test_tracing_is_off_and_free_when_the_extra_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_import = builtins.__import__

    def no_otel(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setattr(builtins, "__import__", no_otel)
    with Runtime() as rt:
        assert rt.tracing is None
        assert rt.monitoring.metrics.tracers == []
        rt.plugins.load_plugin("echoes", plugin("echoes", providers={"echo": Echo}))
        rt.plugins.load_plugin("asker", plugin("asker", steps={"ask": AsksProvider}))
        assert rt.run(RUN)["q"]["text"] == "echo: hello"
