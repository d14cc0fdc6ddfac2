"""The read-only operator endpoints: ``/metrics``, ``/healthz``, ``/plugins[/NAME]``.

They are plain (synchronous) handlers: Starlette runs those on its worker threads, so
taking a snapshot or collecting the Prometheus registry never holds up the event loop.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline_ex.server.context import ServerContext
from pipeline_ex.server.error_responses import refusal
from pipeline_ex.server.json_responses import json_response
from pipeline_ex.server.readout import not_active

#: The Prometheus text exposition format, version 0.0.4 (what ``prometheus_client`` writes).
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def routes(context: ServerContext) -> list[Route]:
    readout = context.readout

    def metrics(request: Request) -> Response:
        return Response(
            readout.prometheus_text(),
            media_type=None,
            headers={"Content-Type": PROMETHEUS_CONTENT_TYPE},
        )

    def healthz(request: Request) -> Response:
        if context.gate.draining:
            return json_response({"status": "stopping", "not_active": []}, status=503)
        plugins = readout.plugins()
        failing = not_active(plugins)
        body = {
            "status": "unhealthy" if failing else "ok",
            "not_active": failing,
            "plugins": {p["name"]: p["status"] for p in plugins},
        }
        return json_response(body, status=503 if failing else 200)

    def plugins(request: Request) -> Response:
        return json_response({"plugins": readout.plugins()})

    def plugin(request: Request) -> Response:
        name = request.path_params["name"]
        found = readout.plugin(name)
        if found is None:
            known = ", ".join(p["name"] for p in readout.plugins()) or "none"
            return json_response(
                refusal("not_loaded", f"no plugin named {name!r}; known: {known}"), status=404
            )
        return json_response(found)

    return [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/plugins", plugins, methods=["GET"]),
        Route("/plugins/{name}", plugin, methods=["GET"]),
    ]
