"""Deterministic mock providers: the default mode, no network.

A response is chosen by pattern: the first registered pattern found in the prompt wins
(``re:`` prefix for a regular expression, ``*`` or ``""`` for anything); otherwise the reply
is ``Mock response for: <first 50 characters of the prompt>``.  Patterns come from tests
(``set_response_pattern``) or from a fixture file (``--mock-responses FILE``).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_ex.documents import load_yaml_file
from pipeline_ex.errors import InvalidInputError
from pipeline_ex.registries.providers import FALLBACK_PRIORITY

Response = str | Mapping[str, Any]


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of a ``re:`` pattern (anything else matches as plain text)."""
    if not pattern.startswith("re:"):
        return re.compile(re.escape(pattern))
    try:
        return re.compile(pattern[3:])
    except re.error as exc:
        raise InvalidInputError(
            f"mock response pattern {pattern!r} is not a valid regex: {exc}"
        ) from None


class MockProvider:
    """A provider whose answers are a pure function of the prompt and the patterns."""

    #: Built-in providers are fallbacks: ``select`` prefers any plugin provider of the
    #: default priority over them (see ``pipeline_ex.registries.providers``).
    priority = FALLBACK_PRIORITY

    def __init__(self, name: str, family: str, model: str) -> None:
        self.name = name
        self.family = family
        self.model = model
        self._patterns: dict[str, Response] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def set_response_pattern(self, pattern: str, response: Response) -> None:
        self.set_response_patterns({pattern: response})

    def set_response_patterns(self, patterns: Mapping[str, Response]) -> None:
        """Add patterns; a ``re:`` pattern is compiled now, so a bad one is refused here
        (``InvalidInputError``) rather than when a step happens to use it."""
        for pattern in patterns:
            compile_pattern(pattern)
        with self._lock:
            self._patterns = {**self._patterns, **patterns}

    def reset(self) -> None:
        with self._lock:
            self._patterns = {}

    def _match(self, prompt: str) -> Response | None:
        for pattern, response in self._patterns.items():
            if pattern in ("", "*"):
                return response
            if pattern.startswith("re:"):
                if compile_pattern(pattern).search(prompt):
                    return response
            elif pattern in prompt:
                return response
        return None

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        chosen = self._match(prompt)
        reply: dict[str, Any] = {
            "success": True,
            "cost": 0.0,
            "provider": self.name,
            "model": options.get("model") or self.model,
            "mock": True,
        }
        if chosen is None:
            reply["text"] = f"Mock response for: {prompt[:50]}"
        elif isinstance(chosen, str):
            reply["text"] = chosen
        else:
            reply.update(chosen)
            reply.setdefault("text", "")
        return reply


def load_response_file(path: str | Path) -> dict[str, dict[str, Response]]:
    """Read a fixture file: ``{claude: {pattern: response}, gemini: {...}, "*": {...}}``."""
    document = load_yaml_file(path)
    data = document.data
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{path}: mock responses must be a mapping of family -> patterns")
    out: dict[str, dict[str, Response]] = {}
    for family, patterns in data.items():
        if family not in ("claude", "gemini", "*") or not isinstance(patterns, Mapping):
            raise InvalidInputError(
                f"{path}: expected keys claude, gemini or '*' each mapping pattern -> response; "
                f"found {family!r}"
            )
        for pattern, response in patterns.items():
            if not isinstance(response, str | Mapping):
                raise InvalidInputError(
                    f"{path}: response for pattern {pattern!r} must be text or a mapping"
                )
        out[str(family)] = {str(k): v for k, v in patterns.items()}
    return out
