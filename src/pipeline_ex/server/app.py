"""``create_app(runtime, settings)``: the operator server as an ASGI application.

The app is built around a Runtime it does not own: whoever built the Runtime closes it
(``pipeline-ex serve`` does, after the server stopped; see :mod:`pipeline_ex.server.serving`).
That keeps the app testable without uvicorn (Starlette's ``TestClient``) and without a
lifespan that a forced shutdown would skip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from pipeline_ex.server import admin, observability, runs, status_page
from pipeline_ex.server.context import ServerContext
from pipeline_ex.server.error_responses import refusal
from pipeline_ex.server.host_check import LoopbackHostOnly, is_loopback_name
from pipeline_ex.server.json_responses import json_response
from pipeline_ex.server.settings import ServerSettings

if TYPE_CHECKING:
    from pipeline_ex.runtime import Runtime

#: HTTP statuses Starlette raises itself (routing), with the code our JSON errors carry.
ROUTING_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors in the same JSON shape as every other error of the server."""
    assert isinstance(exc, HTTPException)
    code = ROUTING_CODES.get(exc.status_code, "http_error")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return json_response(refusal(code, message), status=exc.status_code, headers=exc.headers)


def create_app(runtime: Runtime, settings: ServerSettings | None = None) -> Starlette:
    """The server's ASGI app over ``runtime``; ``app.state.context`` holds its shared state
    (the run gate that ``serving`` drains on shutdown).  Bound to a loopback address, it
    serves only requests addressed to a loopback name (see ``host_check``)."""
    settings = settings or ServerSettings()
    context = ServerContext.build(runtime, settings)
    middleware = [Middleware(LoopbackHostOnly)] if is_loopback_name(settings.host) else []
    app = Starlette(
        routes=[
            *status_page.routes(context),
            *observability.routes(context),
            *runs.routes(context),
            *admin.routes(context),
        ],
        exception_handlers={HTTPException: _http_error},
        middleware=middleware,
    )
    app.state.context = context
    return app
