"""Waiting for another thread or process to reach a state, without betting on the scheduler.

A fixed ``time.sleep`` before an assertion guesses how long the other side takes, and the guess
is lost on a busy machine (the suite runs on 2 cores shared with other work).  ``wait_until``
polls instead and gives up only after ``PATIENCE``, far beyond any honest delay, so a test that
waits this way fails only when the state is never reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Seconds to wait for something that should happen "at once"; only a bug takes this long.
PATIENCE = 30.0


def wait_until(condition: Callable[[], object], what: str, timeout: float = PATIENCE) -> None:
    """Return as soon as ``condition()`` is true; fail the test naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s in vain until {what}")
        time.sleep(0.002)


def finish(thread: threading.Thread | None, what: str, timeout: float = PATIENCE) -> None:
    """Join ``thread`` (one the test saw running plugin code) and fail if it is still alive."""
    assert thread is not None, f"{what}: the thread was never seen"
    thread.join(timeout)
    assert not thread.is_alive(), f"{what}: still running after {timeout:g} s"
