"""Running blocking work (a workflow run, a plugin reload) off the event loop.

Each job gets its own daemon thread rather than a pool's: a step that never returns must
not keep the process alive after shutdown (``concurrent.futures`` joins its workers at
interpreter exit), and the number of jobs is already bounded by the caller (run slots,
the plugin manager's lock), so a thread per job costs nothing that matters next to a run.
The event loop awaits an ``asyncio.Future`` the thread completes; it never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if future.cancelled():  # the request was cancelled while the job ran on
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


def in_thread(job: Callable[[], T], *, name: str) -> asyncio.Future[T]:
    """Start ``job`` on a new daemon thread; the returned future settles on this loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = job()
        except BaseException as exc:  # handed to the awaiting request, which answers it
            error = exc
        # RuntimeError: the loop is closed (the server stopped while this ran).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, future, result, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
