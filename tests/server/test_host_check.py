"""While bound to loopback the server answers only requests addressed to a loopback name,
so a web page that rebinds its own host name to 127.0.0.1 cannot use it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from pipeline_ex import Runtime
from pipeline_ex.server import ServerSettings, create_app
from pipeline_ex.server.host_check import LoopbackHostOnly, host_of, is_loopback_name


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.9.8.7", True),
        ("::1", True),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
    ],
)
def test_loopback_names(host: str, ok: bool) -> None:
    assert is_loopback_name(host) is ok


def test_host_header_parsing() -> None:
    assert host_of("[::1]:8787") == "::1"
    assert host_of("LocalHost:80") == "localhost"
    assert host_of("127.0.0.1") == "127.0.0.1"
    assert host_of("[::1") is None


def test_a_rebound_host_name_is_refused(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime() as live, live.client() as client:
        port = httpx.URL(live.url).port
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz", headers={"Host": f"localhost:{port}"}).status_code == 200
        refused = client.post(
            "/runs",
            content="workflow: {}",
            headers={"Host": f"attacker.example:{port}", "Content-Type": "application/yaml"},
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "host_not_allowed"
        assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400


def test_no_host_check_when_bound_beyond_loopback(server_runtime: Runtime) -> None:
    """Then a proxy in front decides; the app (without uvicorn) serves any Host."""
    app = create_app(server_runtime, ServerSettings(host="0.0.0.0"))
    with TestClient(app, base_url="http://pipeline.example") as client:
        assert client.get("/healthz").status_code == 200
    loopback_app = create_app(server_runtime, ServerSettings())
    with TestClient(loopback_app, base_url="http://pipeline.example") as client:
        assert client.get("/healthz").status_code == 400


@pytest.mark.parametrize(
    "hosts",
    [
        (b"attacker.example", b"127.0.0.1"),
        (b"127.0.0.1", b"attacker.example"),
        (b"127.0.0.1", b"127.0.0.1"),
    ],
)
def test_more_than_one_host_header_is_refused(hosts: tuple[bytes, bytes]) -> None:
    """uvicorn's h11 protocol refuses such a request itself, its httptools protocol (the
    ``uvicorn[standard]`` install) passes it on: the middleware must not rely on either."""
    reached: list[Scope] = []
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/healthz",
        "headers": [(b"host", host) for host in hosts],
    }
    asyncio.run(LoopbackHostOnly(app)(scope, receive, send))
    assert not reached
    assert sent[0]["status"] == 400
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == "host_not_allowed" and "2 Host headers" in error["message"]
