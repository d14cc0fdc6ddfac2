"""What an operator may bound on ``pipeline-ex serve``, checked once at start-up.

Every limit here protects the one Runtime the server keeps for its whole life: a body too
large to parse, a run that never ends, or a burst of runs each holding a thread would
otherwise take the host down for every other client.  A value that makes no sense is the
operator's input error (exit 2), reported before the socket is bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline_ex.errors import InvalidInputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
#: Large enough for any hand-written workflow, small enough that parsing it is instant.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RUN_TIMEOUT_S = 300.0
#: A 1 MiB body arrives in well under a second on any working link; a client that takes
#: longer than this is too slow or holding the connection on purpose.
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_MAX_CONCURRENT_RUNS = 4
#: Below the 30 s most supervisors (systemd, Kubernetes) wait before SIGKILL.
DEFAULT_GRACE_S = 20.0
#: ``GET /runs`` never answers with more than this many records.
MAX_RUNS_LISTED = 200
#: The status page's reload interval unless ``?refresh=N`` asks for another.
DEFAULT_REFRESH_S = 5


@dataclass(frozen=True)
class ServerSettings:
    """The server's bounds; ``admin_token`` is ``None`` when the admin endpoints are off."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    run_timeout_s: float = DEFAULT_RUN_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS
    grace_s: float = DEFAULT_GRACE_S
    #: Never in ``repr``: settings end up in logs and tracebacks.
    admin_token: str | None = field(default=None, repr=False)
    refresh_s: int = DEFAULT_REFRESH_S

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidInputError(f"--port {self.port}: not a TCP port (0-65535)")
        if self.max_body_bytes < 1:
            raise InvalidInputError(f"--max-body-bytes {self.max_body_bytes}: must be >= 1")
        if self.max_concurrent_runs < 1:
            raise InvalidInputError(
                f"--max-concurrent-runs {self.max_concurrent_runs}: must be >= 1"
            )
        for flag, value in (
            ("--run-timeout-s", self.run_timeout_s),
            ("--body-timeout-s", self.body_timeout_s),
            ("--grace-s", self.grace_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise InvalidInputError(f"{flag} {value}: must be a positive number of seconds")
        if self.refresh_s < 0:
            raise InvalidInputError(f"refresh interval {self.refresh_s}: must be >= 0")
        if self.admin_token is not None and not self.admin_token:
            raise InvalidInputError("the admin token is empty")

    @property
    def admin_enabled(self) -> bool:
        return self.admin_token is not None
