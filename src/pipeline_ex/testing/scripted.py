"""ScriptedProvider: a provider whose replies a test writes in advance.

A step that asks a provider something is tested by deciding the answers beforehand and then
checking both the step's result and the prompts it sent; no network, no mock patterns to
learn.  The provider is a real one: it is registered through a tiny plugin, so capability
selection, the guard and the run's mode treat it exactly like a plugin's own provider.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline_ex.errors import PipelineExError
from pipeline_ex.plugins.behaviour import Plugin
from pipeline_ex.plugins.contracts import MetadataDict, ProviderEntry

#: One scripted answer: text, a full reply mapping, or an exception to raise.
Reply = str | Mapping[str, Any] | BaseException


class ScriptExhaustedError(PipelineExError):
    """The provider was asked more often than the test scripted (or nothing matched)."""

    code = "script_exhausted"


class ScriptedProvider:
    """Answers from a script and records every call.

    ``replies`` is either a list, answered in order (one reply per query), or a mapping of
    substring to reply, answered by the first key found in the prompt (``"*"`` matches any
    prompt).  A text reply becomes ``{"text": ..., "success": True, "cost": 0.0}``; a
    mapping is completed with those keys; an exception is raised (to test error handling).
    """

    def __init__(
        self,
        replies: Iterable[Reply] | Mapping[str, Reply],
        *,
        name: str = "scripted",
        priority: int = 0,
    ) -> None:
        self.name = name
        self.priority = priority
        self._patterns: dict[str, Reply] | None = None
        self._queue: list[Reply] = []
        if isinstance(replies, Mapping):
            self._patterns = dict(replies)
        elif isinstance(replies, str | BaseException):
            self._queue = [replies]
        else:
            self._queue = list(replies)
        #: ``(prompt, options)`` of every query, in order.
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    @property
    def prompts(self) -> list[str]:
        """The prompts received, in order."""
        return [prompt for prompt, _ in self.calls]

    @property
    def remaining(self) -> int:
        """Scripted list replies not used yet (0 for a pattern script)."""
        return len(self._queue)

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls.append((prompt, dict(options)))
            reply = self._next(prompt)
        if isinstance(reply, BaseException):
            raise reply
        base: dict[str, Any] = {"success": True, "cost": 0.0, "provider": self.name}
        if isinstance(reply, str):
            return {**base, "text": reply}
        return {**base, **reply}

    def _next(self, prompt: str) -> Reply:
        if self._patterns is None:
            if not self._queue:
                raise ScriptExhaustedError(
                    f"scripted provider {self.name!r} got query {len(self.calls)} but only "
                    f"{len(self.calls) - 1} replies were scripted; prompt: {prompt[:80]!r}"
                )
            return self._queue.pop(0)
        for pattern, reply in self._patterns.items():
            if pattern != "*" and pattern in prompt:
                return reply
        if "*" in self._patterns:
            return self._patterns["*"]
        raise ScriptExhaustedError(
            f"scripted provider {self.name!r}: prompt {prompt[:80]!r} contains none of the "
            f"scripted patterns {', '.join(map(repr, self._patterns)) or '(none)'}"
        )


class ProviderPlugin(Plugin):
    """A one-provider plugin, so a test's provider enters the registry the way a plugin's
    does (owned, selectable, removed on unload)."""

    def __init__(
        self, plugin_name: str, provider_name: str, provider: Any, capabilities: Iterable[str]
    ) -> None:
        self.plugin_name = plugin_name
        self.provider_name = provider_name
        self.provider = provider
        self.capabilities = list(capabilities)

    def get_metadata(self, state: Any) -> MetadataDict:
        return {
            "name": self.plugin_name,
            "version": "0",
            "api_version": 1,
            "description": "a provider registered by pipeline_ex.testing",
        }

    def get_providers(self, state: Any) -> list[ProviderEntry]:
        return [(self.provider_name, self.provider, self.capabilities)]
