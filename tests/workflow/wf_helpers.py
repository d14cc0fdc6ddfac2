"""Test doubles shared by the engine tests (imported by name: tests/workflow is on sys.path)."""

from __future__ import annotations

from typing import Any


class RecordingProvider:
    """A provider that remembers every prompt and options mapping it was given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((prompt, dict(options)))
        return {"text": f"{self.name} reply {len(self.calls)}", "success": True, "cost": 0.0}

    @property
    def prompts(self) -> list[str]:
        return [prompt for prompt, _ in self.calls]
