"""Small plugins for the monitoring tests (imported by name)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins import Plugin

logger = logging.getLogger("tests.monitoring.samples")


class Noop:
    def execute(self, step: Mapping[str, Any], context: Any) -> Any:
        return {"success": True, "text": "ok"}


class Boom:
    def execute(self, step: Mapping[str, Any], context: Any) -> Any:
        raise ValueError("boom")


class Refuses:
    def execute(self, step: Mapping[str, Any], context: Any) -> Any:
        raise PluginError("not today", code="quota_exceeded")


class AsksProvider:
    """Queries the provider named in the step through the context's provider view."""

    def execute(self, step: Mapping[str, Any], context: Any) -> Any:
        logger.warning("asking %s", step["provider"])
        reply = context.providers.get(step["provider"]).query("hello", {})
        return {"success": True, "text": reply["text"]}


class Echo:
    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        logger.warning("echo answering")
        return {"text": f"echo: {prompt}", "success": True, "cost": 0.0}


def plugin(
    name: str,
    *,
    steps: Mapping[str, Any] | None = None,
    providers: Mapping[str, Any] | None = None,
    health: Any = None,
) -> type[Plugin]:
    """A plugin with these step types and providers (capability ``text``); ``health`` is
    called as its health_check when given."""

    class Sample(Plugin):
        def get_metadata(self, state: Any) -> dict[str, Any]:
            return {"name": name, "version": "1.2.3", "api_version": 1}

        def get_step_types(self, state: Any) -> list[tuple[str, Any]]:
            return list((steps or {}).items())

        def get_providers(self, state: Any) -> list[tuple[str, Any, list[str]]]:
            return [(n, p, ["text"]) for n, p in (providers or {}).items()]

        def health_check(self, state: Any) -> Any:
            return health() if health is not None else {"status": "ok"}

    Sample.__name__ = f"{name}_plugin"
    return Sample


class Switch:
    """A health answer the test flips: ``ok`` True/False, or ``hang`` until released."""

    def __init__(self) -> None:
        self.ok = True
        self.hang = False
        self.release = threading.Event()
        #: Set when a check has begun (a hanging one is then waiting for ``release``).
        self.entered = threading.Event()

    def __call__(self) -> Any:
        self.entered.set()
        if self.hang:
            self.release.wait(30)
        if not self.ok:
            raise RuntimeError("database unreachable")
        return {"status": "ok"}


class Ticking(Plugin):
    """Loaded from a config (``monitoring_samples:Ticking``) to test the health thread."""

    def get_metadata(self, state: Any) -> dict[str, Any]:
        return {"name": "ticking", "version": "1.0", "api_version": 1}
