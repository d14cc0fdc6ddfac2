"""Refusing requests addressed to another host name while bound to loopback (DNS rebinding).

A server on 127.0.0.1 is out of reach of other machines, but not of a web page the user
opens: a hostile site can make its own name resolve to 127.0.0.1 (DNS rebinding), after
which the browser treats the server as that site's origin, and the page could post runs
(spending live-mode API keys) and read their results.  Such requests still carry the
hostile name in ``Host``, so while the server listens on a loopback address only requests
addressed to a loopback name are served: ``localhost`` (and ``*.localhost``, which browsers
pin to loopback), ``127.0.0.0/8`` and ``::1``.  Bound to any other address the operator's
proxy decides what reaches the server, and no check is made here.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline_ex.server.error_responses import refusal
from pipeline_ex.server.json_responses import json_response


def is_loopback_name(host: str) -> bool:
    """Whether ``host`` (a name or address, no port, no brackets) means this machine."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str | None:
    """The host part of a ``Host`` header (``[::1]:8787`` -> ``::1``); None if malformed."""
    try:
        return urlsplit("//" + header).hostname
    except ValueError:
        return None


class LoopbackHostOnly:
    """ASGI middleware: 400 ``host_not_allowed`` unless ``Host`` names a loopback host."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            host = host_of(header)
            if host is None or not is_loopback_name(host):
                message = (
                    f"Host {header!r} is not this server's loopback name; use "
                    "http://127.0.0.1:PORT or http://localhost:PORT"
                )
                response = json_response(refusal("host_not_allowed", message), status=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
