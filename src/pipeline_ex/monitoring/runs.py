"""Workflow runs as records: one ``RunRecord`` per ``Runtime.run``, kept in a bounded,
newest-first history (``RunHistory``)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

OUTCOMES = ("ok", "failed", "interrupted")

#: Runs a Runtime remembers unless told otherwise (``Monitoring(run_history=N)``).
DEFAULT_RUN_HISTORY = 100


@dataclass(frozen=True)
class RunRecord:
    """What one run did: how long, how it ended, which step types and providers it used."""

    id: str
    workflow: str
    started_at: datetime
    duration_s: float
    outcome: str
    error_code: str | None = None
    error: str | None = None
    steps: int = 0
    step_types: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    source: str = "api"
    mode: str = "mock"
    labels: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 6),
            "outcome": self.outcome,
            "error_code": self.error_code,
            "error": self.error,
            "steps": self.steps,
            "step_types": sorted(self.step_types),
            "providers": sorted(self.providers),
            "source": self.source,
            "mode": self.mode,
            "labels": dict(self.labels),
        }


class RunHistory:
    """The last ``limit`` runs, newest first; thread-safe."""

    def __init__(self, limit: int = DEFAULT_RUN_HISTORY) -> None:
        if limit < 1:
            raise ValueError(f"run history must hold at least one run, got {limit}")
        self._runs: deque[RunRecord] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self.total = 0
        self.by_outcome: dict[str, int] = dict.fromkeys(OUTCOMES, 0)

    def add(self, record: RunRecord) -> None:
        with self._lock:
            self._runs.appendleft(record)
            self.total += 1
            self.by_outcome[record.outcome] = self.by_outcome.get(record.outcome, 0) + 1

    def newest(self, limit: int | None = None) -> list[RunRecord]:
        with self._lock:
            runs = list(self._runs)
        return runs if limit is None else runs[: max(limit, 0)]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.by_outcome)
