"""Leases: how many calls are running on one loaded version of a plugin.

Unload and reload retire a version and wait for its calls in flight to return before its
state is terminated.  The callers the guard builds (``Guard.bind``) count their calls in
their ``Meter`` (``pipeline_ex.monitoring.metrics``): a call bumps its thread's
``started`` slot before it reads ``retired`` and its latency bucket when it returns, so
the calls in flight are the meters' ``started`` minus their finished calls.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline_ex.monitoring.metrics import Meter

_clock = time.perf_counter


class Lease:
    """One loaded version of a plugin, as its callers see it: the meters of its callers
    (what is in flight) and whether the version has been retired.

    ``retired`` is a one-element list so that the callers' closures read it without an
    attribute lookup.  A caller counts itself started before it reads ``retired``, and
    ``drain`` sets ``retired`` before it counts: every call either sees the retirement or
    is counted by the drain.
    """

    __slots__ = ("meters", "retired")

    def __init__(self) -> None:
        self.meters: list[Meter] = []
        self.retired: list[bool] = []

    @property
    def is_retired(self) -> bool:
        return bool(self.retired)

    def in_flight(self) -> int:
        return sum(meter.in_flight() for meter in list(self.meters))

    def drain(self, timeout: float) -> bool:
        """Retire this version and wait until its calls in flight have returned (at most
        ``timeout`` seconds); True when none is left."""
        if not self.retired:
            self.retired.append(True)
        deadline = _clock() + timeout
        pause = 0.0005
        while self.in_flight() > 0:
            if _clock() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        for meter in self.meters:  # nothing counts there any more: fold them away
            meter.finished = True
        return True
