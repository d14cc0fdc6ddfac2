"""The restart budget of one isolated plugin (one-for-one, like an OTP supervisor).

A child that crashes or times out is restarted at once while fewer than ``max_restarts``
restarts happened in the last ``window_s`` seconds; past that the plugin is ``failed``
and stays so until it is unloaded and loaded again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """The entry's ``restart: {max_restarts, window_s}``."""

    max_restarts: int = 3
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_restarts, bool)
            or not isinstance(self.max_restarts, int)
            or self.max_restarts < 0
        ):
            raise ValueError(
                f"restart.max_restarts must be an integer >= 0, got {self.max_restarts!r}"
            )
        if (
            isinstance(self.window_s, bool)
            or not isinstance(self.window_s, int | float)
            or self.window_s <= 0
        ):
            raise ValueError(f"restart.window_s must be a positive number, got {self.window_s!r}")


class RestartBudget:
    """Counts restarts in a sliding window; ``clock`` is injectable for tests."""

    def __init__(self, policy: RestartPolicy, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self._clock = clock
        self._restarts: deque[float] = deque()
        self.total = 0

    def _trim(self, now: float) -> None:
        while self._restarts and now - self._restarts[0] >= self.policy.window_s:
            self._restarts.popleft()

    def recent(self) -> int:
        self._trim(self._clock())
        return len(self._restarts)

    def take(self) -> bool:
        """Spend one restart if the budget allows it; ``False`` means give up."""
        now = self._clock()
        self._trim(now)
        if len(self._restarts) >= self.policy.max_restarts:
            return False
        self._restarts.append(now)
        self.total += 1
        return True
