"""Refusing requests addressed to another host name while bound to loopback (DNS rebinding).

A server on 127.0.0.1 is out of reach of other machines, but not of a web page the user
opens: a hostile site can make its own name resolve to 127.0.0.1 (DNS rebinding), after
which the browser treats the server as that site's origin, and the page could post runs
(spending live-mode API keys) and read their results.  Such requests still carry the
hostile name in ``Host``, so while the server listens on a loopback address only requests
addressed to a loopback name are served: ``localhost`` (and ``*.localhost``, which browsers
pin to loopback), ``127.0.0.0/8`` and ``::1``.  A request with more than one ``Host``
header is refused too: which one counts differs between the server, proxies and the
browser, and the check must judge the one the rest of the stack would use.  Bound to any
other address the operator's proxy decides what reaches the server, and no check is made
here.
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
    """ASGI middleware: 400 ``host_not_allowed`` unless exactly one ``Host`` names a
    loopback host."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hosts = [value for key, value in scope["headers"] if key == b"host"]
            header = hosts[0].decode("latin-1") if hosts else ""
            host = host_of(header)
            if len(hosts) > 1:
                message = f"{len(hosts)} Host headers; send exactly one"
            elif host is None or not is_loopback_name(host):
                message = (
                    f"Host {header!r} is not this server's loopback name; use "
                    "http://127.0.0.1:PORT or http://localhost:PORT"
                )
            else:
                message = None
            if message is not None:
                response = json_response(refusal("host_not_allowed", message), status=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
