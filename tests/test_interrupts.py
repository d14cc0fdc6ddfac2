"""The user's Ctrl-C versus a KeyboardInterrupt raised by plugin code."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from pipeline_ex import interrupts


def test_an_interrupt_raised_off_the_main_thread_is_never_the_users() -> None:
    seen: list[bool] = []

    def worker() -> None:
        seen.append(interrupts.is_user_interrupt(KeyboardInterrupt()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [False]


def test_without_the_handler_a_main_thread_interrupt_is_taken_as_the_users() -> None:
    assert interrupts.is_user_interrupt(KeyboardInterrupt())
    assert not interrupts.is_user_interrupt(SystemExit(0))


def test_with_the_handler_only_the_signal_raised_interrupt_is_the_users() -> None:
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    restore = interrupts.install()
    try:
        assert not interrupts.is_user_interrupt(KeyboardInterrupt())
        # even the handler's own class, raised by code, is a plugin's doing
        assert not interrupts.is_user_interrupt(interrupts.UserInterrupt())
        with pytest.raises(KeyboardInterrupt) as info:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes of the main thread
                pass
        assert interrupts.is_user_interrupt(info.value)
        assert not interrupts.plugin_raised(info.value)
    finally:
        restore()
    assert signal.getsignal(signal.SIGINT) == before
