"""Pooled helper threads that run single guarded calls against a deadline.

``Guard.call`` hands a call to an idle worker and waits on its completion lock with the
deadline; a worker whose call overruns is abandoned (Python cannot kill a thread) and the
next call gets another.  A worker returns itself to the pool after each call; idle ones
beyond ``MAX_IDLE_WORKERS`` exit, and all of them exit when the pool is closed (the
Runtime's ``close``) or goes away with its guard: a closed Runtime is often still
referenced (by a test, a caller's variable), so waiting for the garbage collector left one
idle thread per closed Runtime.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

#: Idle helper threads kept per guard; more are started when calls overlap.
MAX_IDLE_WORKERS = 4

#: Set on worker threads: a guarded call made from inside one runs inline.
in_worker = threading.local()


class Task:
    """One guarded call handed to a worker; ``done`` is released when it has finished."""

    __slots__ = (
        "args",
        "code",
        "done",
        "failure",
        "fn",
        "guard",
        "operation",
        "outcome",
        "plugin",
        "quiet",
    )

    def __init__(
        self,
        guard: Any,
        plugin: str,
        operation: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        code: str,
        quiet: bool = False,
    ) -> None:
        self.guard = guard
        self.plugin = plugin
        self.operation = operation
        self.fn = fn
        self.args = args
        self.code = code
        self.quiet = quiet
        self.outcome: Any = None
        self.failure: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.outcome = self.guard.invoke(
                self.plugin, self.operation, self.fn, *self.args, code=self.code, quiet=self.quiet
            )
        except BaseException as exc:
            self.failure = exc


class _Worker:
    """A daemon thread running tasks from its own queue, one at a time.

    It holds its pool only weakly: when the guard goes away, the pool's finalizer tells
    the idle workers to exit, so a discarded Runtime leaves no threads behind.
    """

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = weakref.ref(pool)
        self.pid = os.getpid()
        self.tasks: queue.SimpleQueue[tuple[Task, str] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="plugin:idle", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        in_worker.active = True
        me = threading.current_thread()
        while True:
            item = self.tasks.get()
            if item is None:
                return
            task, name = item
            me.name = name
            # A fresh context per call, as a new thread would have: no context variable
            # set by one plugin's call leaks into the next one run on this thread.
            contextvars.Context().run(task.run)
            me.name = "plugin:idle"
            pool = self.pool()
            keep = pool is not None and pool.give_back(self)
            del pool
            task.done.release()
            del task, item
            if not keep:
                return


def _stop_idle(idle: list[_Worker], lock: threading.Lock) -> None:
    with lock:
        for worker in idle:
            worker.tasks.put(None)
        idle.clear()


class WorkerPool:
    """Idle workers of one guard.  A worker returns itself after each task (so one that
    overran a deadline comes back only if it ever finishes); extra idle ones exit."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        weakref.finalize(self, _stop_idle, self._idle, self._lock)

    def submit(self, task: Task, name: str) -> None:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None or worker.pid != os.getpid():  # none idle, or inherited by fork
            if worker is not None:
                with self._lock:
                    self._idle.clear()
            worker = _Worker(self)
        worker.tasks.put((task, name))

    def give_back(self, worker: _Worker) -> bool:
        with self._lock:
            if self._closed or len(self._idle) >= MAX_IDLE_WORKERS:
                return False
            self._idle.append(worker)
            return True

    def close(self) -> None:
        """Let every idle worker exit (busy ones exit when they finish).  A call made
        afterwards still runs, on a worker that exits after it."""
        with self._lock:
            self._closed = True
        _stop_idle(self._idle, self._lock)
