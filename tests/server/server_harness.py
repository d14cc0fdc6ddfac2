"""The real server on a thread for the server tests (``serving.serve``: uvicorn on a free
port of 127.0.0.1), and what the tests share.

Signals can only be handled on the main thread, so the in-thread server is stopped the way
a signal would stop it (``request_stop``); the SIGTERM path itself is tested with a
``pipeline-ex serve`` subprocess (test_server_process.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from pipeline_ex import Runtime
from pipeline_ex.server import serving
from pipeline_ex.server.settings import ServerSettings

HERE = Path(__file__).resolve().parent
TOKEN = "s3cret-admin-token-for-tests"


@dataclass
class LiveServer:
    url: str
    server: Any
    outcome: dict[str, Any] = field(default_factory=dict)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


@contextmanager
def live_server(runtime: Runtime, settings: ServerSettings | None = None) -> Iterator[LiveServer]:
    """``serve`` on a thread, on a free port; stopped (gracefully) on the way out."""
    settings = replace(settings or ServerSettings(), host="127.0.0.1", port=0)
    started = threading.Event()
    box: dict[str, Any] = {}

    def ready(server: Any) -> None:
        box["server"] = server
        started.set()

    def target() -> None:
        try:
            box["outcome"] = serving.serve(
                runtime, settings, announce=lambda url: box.update(url=url), ready=ready
            )
        except BaseException as exc:
            box["error"] = exc
            started.set()

    thread = threading.Thread(target=target, name="test-server", daemon=True)
    thread.start()
    assert started.wait(30), "the server did not start"
    if "error" in box:
        raise box["error"]
    live = LiveServer(url=box["url"], server=box["server"])
    try:
        yield live
    finally:
        box["server"].request_stop()
        thread.join(60)
        assert not thread.is_alive(), "the server did not stop"
        live.outcome = {"outcome": box.get("outcome"), "error": box.get("error")}
