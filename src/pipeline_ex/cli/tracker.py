"""What happened to each top-level step during a run, collected from the engine's events.

The results mapping says what each step returned but not its type, nor which step was
running when the run stopped; the events say both.  The summary table is built from this
record, so it also covers a failed run whose results are partial.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Paths of top-level steps; nested steps (``loop.steps[0]``) do not match.
TOP_LEVEL = re.compile(r"^workflow\.steps\[(\d+)\]$")


def is_top_level(event: str, info: Mapping[str, Any], running: str | None) -> bool:
    """Whether an event concerns a top-level step, given the top-level step now running.

    Top-level steps run one at a time, so while one runs every other event is nested; this
    also covers a loop literally named ``workflow`` whose inner paths look top-level.
    """
    if not TOP_LEVEL.match(str(info.get("path", ""))):
        return False
    if event == "step_finished":
        return running is not None and info.get("name") == running
    return running is None


EventSink = Callable[[str, Mapping[str, Any]], None]


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "running"  # running, ok, skipped, failed
    started: float = 0.0
    seconds: float | None = None
    nested: int = 0


class RunTracker:
    """An ``on_event`` sink; thread-safe because parallel loops emit from worker threads."""

    def __init__(self) -> None:
        self.steps: dict[str, StepRecord] = {}
        self._current: StepRecord | None = None
        self._lock = threading.Lock()

    def on_event(self, event: str, info: Mapping[str, Any]) -> None:
        with self._lock:
            running = self._current.name if self._current is not None else None
            if not is_top_level(event, info, running):
                if event == "step_finished" and self._current is not None:
                    self._current.nested += 1
                return
            name, kind = str(info.get("name")), str(info.get("type"))
            if event == "step_started":
                record = StepRecord(name, kind, started=time.perf_counter())
                self.steps[name] = record
                self._current = record
            elif event == "step_finished":
                record = self.steps.setdefault(name, StepRecord(name, kind))
                record.status = "ok"
                if record.started:
                    record.seconds = time.perf_counter() - record.started
                self._current = None
            elif event == "step_skipped":
                self.steps[name] = StepRecord(name, kind, status="skipped", seconds=0.0)

    def mark_failed(self) -> None:
        """The run stopped: the step still running is the one that failed."""
        with self._lock:
            for record in self.steps.values():
                if record.status == "running":
                    record.status = "failed"
                    if record.started:
                        record.seconds = time.perf_counter() - record.started


def fan_out(*sinks: EventSink | None) -> EventSink:
    """One ``on_event`` callback feeding several sinks (tracker, progress display)."""
    active = [sink for sink in sinks if sink is not None]

    def sink(event: str, info: Mapping[str, Any]) -> None:
        for each in active:
            each(event, info)

    return sink
