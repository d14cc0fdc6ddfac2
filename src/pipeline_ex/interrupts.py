"""Telling the user's Ctrl-C from a ``KeyboardInterrupt`` that plugin code raised.

Plugin code is never trusted to behave, and ``raise KeyboardInterrupt`` (or any other
``BaseException``) from a step or an ``init`` is just another way of failing: it must fail
that call, not stop the host.  The user pressing Ctrl-C must still stop the host cleanly.
Both arrive as ``KeyboardInterrupt``; what tells them apart:

* Python delivers signals to the main thread only, so a ``KeyboardInterrupt`` raised on any
  other thread (every guarded lifecycle call runs on a helper thread) came from code.
* On the main thread, :func:`install` (the CLI calls it) puts a SIGINT handler in place that
  remembers the exact exception object it raised; an interrupt that is not one of those was
  raised by code.
* Without the handler (a library user's own process) an interrupt on the main thread cannot
  be told apart, and is taken as the user's: a real Ctrl-C is never swallowed.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import FrameType

#: Interrupt objects raised by our SIGINT handler (weakly held: they die with their traceback).
_raised: weakref.WeakSet[BaseException] = weakref.WeakSet()
_installed = False


class UserInterrupt(KeyboardInterrupt):
    """The ``KeyboardInterrupt`` our SIGINT handler raises (recognised by identity, not type,
    so that plugin code raising this class is still a plugin failure)."""


def _handler(signum: int, frame: FrameType | None) -> None:
    interrupt = UserInterrupt()
    _raised.add(interrupt)
    raise interrupt


def install() -> Callable[[], None]:
    """Route SIGINT through the recording handler (main thread only); returns an undo."""
    import signal  # only the CLI installs it: not worth a library user's start-up

    global _installed
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: Any = signal.signal(signal.SIGINT, _handler)
    _installed = True

    def restore() -> None:
        global _installed
        signal.signal(signal.SIGINT, previous)
        _installed = False

    return restore


def is_user_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's Ctrl-C (stop everything) rather than a plugin's doing."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    if exc in _raised:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    return not _installed


def plugin_raised(exc: BaseException) -> bool:
    """Whether a ``BaseException`` that escaped plugin code is that plugin's failure.

    Everything is, except the user's own Ctrl-C.  (``SystemExit``, ``GeneratorExit``, a
    plugin's own ``BaseException`` subclass, a host-internal control-flow exception the
    plugin got hold of: all failures of the call that raised them.)
    """
    return not is_user_interrupt(exc)
