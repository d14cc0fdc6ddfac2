"""Admission of workflow runs: a fixed number of slots, a stop signal, and draining.

A run holds its slot until its thread has returned, not until its HTTP answer is sent: a
run past ``--run-timeout-s`` is answered 504 at once but keeps its slot while it winds
down, so the number of threads running workflows never exceeds ``--max-concurrent-runs``.

Python cannot kill a thread, so a run is stopped cooperatively: the run's event sink (the
executor calls it before and after every step, loops included) raises :class:`RunStopped`
once the run's :class:`Ticket` is stopped, which fails the run at its next step boundary.
A step already inside a long provider call finishes that call first.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from pipeline_ex.errors import PipelineExError


class RunStopped(PipelineExError):
    """Raised inside a run whose ticket was stopped (timeout or shutdown)."""

    code = "run_stopped"


class GateClosed(PipelineExError):
    """No run admitted: every slot is taken (``too_many_runs``) or the server is stopping
    (``shutting_down``)."""


class Ticket:
    """One admitted run: its id, and the flag its event sink checks."""

    def __init__(self, gate: RunGate) -> None:
        self.id = uuid.uuid4().hex
        self._gate = gate
        self._stopped = threading.Event()
        self.stop_code: str | None = None
        self.stop_reason = ""
        self._released = False

    def stop(self, code: str, reason: str) -> None:
        if not self._stopped.is_set():
            self.stop_code, self.stop_reason = code, reason
            self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def check(self, event: str, payload: Mapping[str, Any]) -> None:
        """The run's event sink: raise at the next step boundary once stopped."""
        if self._stopped.is_set():
            raise RunStopped(f"run stopped {_where(event, payload)}: {self.stop_reason}")

    def release(self) -> None:
        self._gate.release(self)


def _where(event: str, payload: Mapping[str, Any]) -> str:
    """Where the run stood, by the event that noticed the stop: a ``step_finished`` step
    did run, so the run stopped after it, not before."""
    name = payload.get("name")
    if event == "step_started":
        return f"before step {name!r}"
    if event in ("step_finished", "step_skipped"):
        return f"after step {name!r}"
    return f"at {event}" + (f" of step {name!r}" if name is not None else "")


class RunGate:
    def __init__(self, max_runs: int) -> None:
        self.max_runs = max_runs
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active: dict[str, Ticket] = {}
        self._draining = False

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)

    def admit(self) -> Ticket:
        with self._lock:
            if self._draining:
                raise GateClosed("the server is shutting down", code="shutting_down")
            if len(self._active) >= self.max_runs:
                raise GateClosed(
                    f"{self.max_runs} runs are already running (--max-concurrent-runs); "
                    "retry later",
                    code="too_many_runs",
                )
            ticket = Ticket(self)
            self._active[ticket.id] = ticket
            return ticket

    def release(self, ticket: Ticket) -> None:
        with self._lock:
            if self._active.pop(ticket.id, None) is not None and not self._active:
                self._idle.notify_all()

    def drain(self) -> None:
        """Admit nothing more; runs already admitted go on."""
        with self._lock:
            self._draining = True

    def stop_all(self, code: str, reason: str) -> None:
        with self._lock:
            tickets = list(self._active.values())
        for ticket in tickets:
            ticket.stop(code, reason)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every admitted run to return."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
            return True
