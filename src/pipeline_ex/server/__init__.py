"""The operator server (``pipeline-ex serve``): one Runtime, served over HTTP.

Needs the ``serve`` extra (Starlette and uvicorn).  One module per concern:

* ``app`` — :func:`create_app`, the ASGI app (testable without uvicorn);
* ``serving`` — uvicorn, the socket, signals and graceful shutdown;
* ``settings`` — the operator's bounds (:class:`ServerSettings`);
* ``readout`` — the one place that reads the Runtime's monitoring;
* ``observability`` — ``/metrics``, ``/healthz``, ``/plugins``;
* ``runs``, ``run_requests``, ``run_gate``, ``threads`` — ``POST /runs`` and ``GET /runs``:
  bodies, admission and stopping, work off the event loop;
* ``admin``, ``auth`` — the token-protected plugin lifecycle endpoints;
* ``host_check`` — loopback names only while bound to loopback (DNS rebinding);
* ``status_page``, ``html`` — ``GET /``, with everything plugin-reported escaped;
* ``error_responses``, ``json_responses`` — typed errors as HTTP answers, strict JSON.

Importing the package (or ``server.settings``, ``server.auth``) does not import Starlette:
the CLI reads the settings' defaults for its ``--help`` without the extra installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline_ex.server.settings import ServerSettings

if TYPE_CHECKING:
    from pipeline_ex.server.app import create_app

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from pipeline_ex.server.app import create_app

        globals()["create_app"] = create_app
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
