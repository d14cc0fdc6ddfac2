"""Leases: how many calls are running on one loaded version of a plugin.

Unload and reload retire a version and wait for its calls in flight to return before its
state is terminated; the step callers the guard builds (``Guard.bind``) hold the lease.
"""

from __future__ import annotations

import time

_clock = time.perf_counter


class Lease:
    """One loaded version of a plugin, as its step callers see it: how many calls are in
    flight, and whether the version has been retired.

    ``inflight`` is a list used as an atomic counter (``append``/``pop`` are single
    operations under the GIL; ``+= 1`` on an int is not).  ``retired`` is a one-element
    list so that the callers' closures read it without an attribute lookup.  A caller
    enters (append) before it reads ``retired``, and ``drain`` sets ``retired`` before it
    reads the count: every call either sees the retirement or is counted by the drain.
    """

    __slots__ = ("inflight", "retired")

    def __init__(self) -> None:
        self.inflight: list[None] = []
        self.retired: list[bool] = []

    @property
    def is_retired(self) -> bool:
        return bool(self.retired)

    def drain(self, timeout: float) -> bool:
        """Retire this version and wait until its calls in flight have returned (at most
        ``timeout`` seconds); True when none is left."""
        if not self.retired:
            self.retired.append(True)
        deadline = _clock() + timeout
        pause = 0.0005
        while self.inflight:
            if _clock() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        return True
