"""The live per-step progress display shown on stderr when it is a terminal.

Only top-level steps get a row: a loop with a hundred iterations would otherwise scroll the
useful rows away.  Nested steps show up as a counter on their loop's row.  The display
goes to stderr so that stdout stays clean for ``--json`` and pipes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from pipeline_ex.cli.tracker import is_top_level

MARKS = {"ok": "[green]✓[/]", "skipped": "[yellow]↷[/]", "failed": "[red]✗[/]", "running": " "}


class StepProgress:
    """An ``on_event`` sink that drives a rich ``Progress``; a context manager."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(finished_text=""),
            TextColumn("{task.fields[mark]} {task.description}"),
            TextColumn("[dim]{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,  # the summary table printed afterwards replaces it
        )
        self._rows: dict[str, TaskID] = {}
        self._current: TaskID | None = None
        self._running: str | None = None
        self._nested = 0
        self._lock = threading.Lock()

    def __enter__(self) -> StepProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.mark_failed()
        self._progress.stop()

    def _label(self, info: Mapping[str, Any]) -> str:
        return f"{escape(str(info.get('name')))} [dim]({escape(str(info.get('type')))})[/]"

    def on_event(self, event: str, info: Mapping[str, Any]) -> None:
        path = str(info.get("path", ""))
        with self._lock:
            if not is_top_level(event, info, self._running):
                if event == "step_finished" and self._current is not None:
                    self._nested += 1
                    detail = f"→ {info.get('name')} ({self._nested} nested steps done)"
                    self._progress.update(self._current, detail=escape(detail))
                return
            if event == "step_started":
                self._nested = 0
                self._running = str(info.get("name"))
                self._current = self._progress.add_task(
                    self._label(info), total=1, mark=MARKS["running"], detail=""
                )
                self._rows[path] = self._current
            elif event == "step_finished":
                row = self._rows.get(path)
                if row is not None:
                    self._progress.update(row, completed=1, mark=MARKS["ok"])
                self._current = None
                self._running = None
            elif event == "step_skipped":
                row = self._progress.add_task(
                    self._label(info), total=1, mark=MARKS["skipped"], detail="skipped"
                )
                self._progress.update(row, completed=1)  # stops its spinner
                self._rows[path] = row

    def mark_failed(self) -> None:
        with self._lock:
            if self._current is not None:
                self._progress.update(
                    self._current, completed=1, mark=MARKS["failed"], detail="failed"
                )
                self._current = None
                self._running = None
