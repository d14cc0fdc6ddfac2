"""One run's extra threads: a shared allowance that parallel sections draw from.

Each parallel section (a parallel ``for_loop``, ``parallel_claude``) used to start its own
pool of up to 32 threads, so nesting multiplied them (three nested loops: 15,552 threads).
Now a run holds one ``ThreadAllowance`` of ``max_extra_threads`` slots.  ``map`` takes the
slots that are free *without waiting* and runs the rest of the work on the calling thread,
so a nested section that finds none free simply runs inline: the total stays bounded and
nothing can deadlock waiting for a slot held by its own parent.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pipeline_ex.interrupts import plugin_raised

T = TypeVar("T")


class ThreadAllowance:
    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self._slots = threading.BoundedSemaphore(self.limit) if self.limit else None
        self._lock = threading.Lock()
        self.in_use = 0
        self.peak = 0  # most extra threads alive at once in this run (for tests and logs)

    def _take(self, wanted: int) -> int:
        taken = 0
        while self._slots is not None and taken < wanted and self._slots.acquire(blocking=False):
            taken += 1
        if taken:
            with self._lock:
                self.in_use += taken
                self.peak = max(self.peak, self.in_use)
        return taken

    def _give_back(self) -> None:
        with self._lock:
            self.in_use -= 1
        if self._slots is not None:
            self._slots.release()

    def map(self, fn: Callable[[T], Any], items: Sequence[T], max_parallel: int) -> list[Any]:
        """``[fn(item) for item in items]`` with up to ``max_parallel`` threads at once (the
        calling thread included), results in order.

        After a failure no new item starts; the failure of the earliest item is raised
        (the user's own Ctrl-C before anything else).
        """
        count = len(items)
        helpers = self._take(min(max_parallel, count) - 1) if count > 1 else 0
        results: list[Any] = [None] * count
        errors: dict[int, BaseException] = {}
        state = {"next": 0, "stop": False}
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if state["stop"] or state["next"] >= count:
                        return
                    index = state["next"]
                    state["next"] = index + 1
                try:
                    results[index] = fn(items[index])
                except BaseException as exc:
                    with lock:
                        errors[index] = exc
                        state["stop"] = True

        def helper() -> None:
            try:
                work()
            finally:
                self._give_back()

        # Each helper runs in a copy of the caller's context variables (the run and step
        # that log records and run records name, an OpenTelemetry span), as asyncio does.
        threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(helper,),
                name="pipeline-ex:parallel",
                daemon=True,
            )
            for _ in range(helpers)
        ]
        started = 0
        try:
            for thread in threads:
                thread.start()
                started += 1
            work()
        finally:
            if started < helpers:  # a thread that could not start gives its slot back
                with lock:
                    state["stop"] = True
                for _ in range(helpers - started):
                    self._give_back()
            for thread in threads[:started]:
                thread.join()
        if errors:
            user = [e for e in errors.values() if not plugin_raised(e)]
            raise user[0] if user else errors[min(errors)]
        return results
