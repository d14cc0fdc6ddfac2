"""Running the app on uvicorn, and stopping it gracefully.

SIGTERM or Ctrl-C (the first one): the run gate stops admitting runs, and the server keeps
listening while requests or runs are in flight, for at most ``--grace-s``: meanwhile a new
``POST /runs`` and ``/healthz`` answer 503 (``shutting_down`` / ``stopping``), so a load
balancer polling ``/healthz`` sees the server leave instead of a refused connection, and
other requests are served.  Once nothing is in flight (at once when idle) or the grace
period is over, uvicorn stops accepting connections, waits what is left of the grace period
for the requests still running, then cancels them.  Runs that outlived their request (past
``--run-timeout-s``) get what is left of the same grace period, then are stopped at their
next step boundary.  Only then does the caller close the Runtime, which terminates the
plugins dependents first.  A second signal skips the waiting.

The draining phase lives in ``on_tick``: uvicorn closes its listener as soon as
``should_exit`` is set, so a stop sets it only once draining is over.

uvicorn's own signal handling re-raises the signal once it is done, which would end the
process by that signal before the Runtime is closed, so this server installs its own
handlers for the time it serves (and restores the previous ones, the CLI's Ctrl-C handler
included).  The socket is bound here too, before uvicorn starts: an address in use is a
typed error (exit 2) instead of uvicorn's ``sys.exit(1)``, and ``--port 0`` works (the
bound port is announced).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from pipeline_ex.errors import InvalidInputError
from pipeline_ex.server.app import create_app
from pipeline_ex.server.run_gate import RunGate
from pipeline_ex.server.settings import ServerSettings

if TYPE_CHECKING:
    from pipeline_ex.runtime import Runtime

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class BindError(InvalidInputError):
    code = "address_unavailable"


@dataclass
class Outcome:
    """How serving ended: the signals that stopped it and whether runs were cut short."""

    signals: list[str] = field(default_factory=list)
    runs_stopped: int = 0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port).

    Made with ``IPPROTO_TCP`` as its protocol, as asyncio's own ``create_server`` makes
    them: asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on connections of such
    sockets, and with it on, every answer on a kept-alive connection waited ~40 ms for the
    client's delayed ACK (``socket.create_server`` leaves the protocol 0).
    """
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        sock = socket.socket(family, kind, proto)
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except (OSError, UnicodeError) as exc:
        if sock is not None:
            sock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise BindError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server with this module's signal policy (see the module docstring)."""

    def __init__(
        self,
        config: uvicorn.Config,
        gate: RunGate,
        on_started: Callable[[], None],
        grace_s: float,
    ):
        super().__init__(config)
        self.gate = gate
        self.on_started = on_started
        self.grace_s = grace_s
        self.signals: list[str] = []
        self.stop_requested_at: float | None = None
        #: Set once the event loop has seen the stop: still listening, answering 503.
        self.draining = False

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(signal.Signals(sig).name)
        if self.stop_requested_at is not None:
            self.force_exit = True  # a second signal: stop waiting
            self.should_exit = True
            return
        self.request_stop()

    def request_stop(self) -> None:
        """What a signal does; also callable from another thread (tests, embedding)."""
        self.gate.drain()
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self.stop_requested_at is None:
            self.on_started()

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        began = self.stop_requested_at
        if began is None:
            return False
        in_flight = len(self.server_state.tasks)
        if not self.draining:
            self.draining = True
            logger.info(
                "stopping: %d request(s) and %d run(s) in flight; still listening (503 for "
                "/healthz and new runs) for up to %g s",
                in_flight,
                self.gate.active,
                self.grace_s,
            )
        left = self.grace_s - (time.monotonic() - began)
        if (in_flight or self.gate.active) and left > 0:
            return False
        # uvicorn now stops listening and gives the requests still running what is left
        self.config.timeout_graceful_shutdown = max(0, math.ceil(left))
        self.should_exit = True
        return True


def serve(
    runtime: Runtime,
    settings: ServerSettings,
    *,
    announce: Callable[[str], None] = lambda url: None,
    ready: Callable[[_Server], None] | None = None,
) -> Outcome:
    """Serve ``runtime`` until a stop signal; returns once no admitted run is left running
    (or the grace period is over).  The caller closes the Runtime afterwards."""
    sock = bind(settings.host, settings.port)
    url = url_of(sock)
    app = create_app(runtime, settings)
    gate: RunGate = app.state.context.gate
    config = uvicorn.Config(
        app,
        log_config=None,  # the CLI's logging set-up stays in charge (-v shows uvicorn's)
        lifespan="off",
        timeout_graceful_shutdown=math.ceil(settings.grace_s),  # whole seconds (uvicorn)
        server_header=False,
    )
    server: _Server

    def started() -> None:
        announce(url)
        if ready is not None:
            ready(server)

    server = _Server(config, gate, started, settings.grace_s)
    outcome = Outcome()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        gate.drain()
        began = server.stop_requested_at or time.monotonic()
        left = 0.0 if server.force_exit else settings.grace_s - (time.monotonic() - began)
        if not gate.wait_idle(left):
            outcome.runs_stopped = gate.active
            gate.stop_all("shutting_down", "the server is shutting down")
            logger.warning(
                "%d run(s) still running after the grace period; stopped at their next step",
                outcome.runs_stopped,
            )
        outcome.signals = list(server.signals)
    return outcome
