"""A fake Anthropic + Gemini HTTP API on 127.0.0.1 for driving the real SDKs in tests.

It implements just enough of ``POST /v1/messages`` (Anthropic) and
``POST /{version}/models/{model}:generateContent`` (Gemini Developer API) for the SDKs to
parse the replies, records every request (path, headers, JSON body) so tests can assert
what the SDK actually sent, and plays scripted replies (errors, delays) queued per API.
With nothing queued it answers successfully, echoing the prompt so a chained workflow can
be checked end to end.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The keys the tests put in the environment, so requests can be checked for them.
CLAUDE_KEY = "sk-ant-test-key"
GEMINI_KEY = "gemini-test-key"

_GEMINI_PATH = re.compile(r"^/(?P<version>[^/]+)/models/(?P<model>[^/:]+):generateContent$")


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it (header names lower-cased)."""

    api: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """A scripted reply: a status, a JSON body (None = the default success body), headers,
    and a delay before answering (to provoke client timeouts)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def anthropic_error(status: int, kind: str, message: str, **headers: str) -> Reply:
    return Reply(
        status=status,
        body={"type": "error", "error": {"type": kind, "message": message}},
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def gemini_error(
    status: int,
    state: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    **headers: str,
) -> Reply:
    error: dict[str, Any] = {"code": status, "message": message, "status": state}
    if details:
        error["details"] = details
    return Reply(
        status=status,
        body={"error": error},
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


class FakeLLMServer:
    """Start with ``start()``; ``url`` is the base URL to give both SDKs."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queues: dict[str, deque[Reply]] = {"anthropic": deque(), "gemini": deque()}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.usage = {"input": 1200, "output": 300}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that are sleeping out a delay
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def queue(self, api: str, *replies: Reply) -> None:
        """Replies for the next requests to ``api`` ("anthropic" or "gemini"), in order."""
        with self._lock:
            self._queues[api].extend(replies)

    def requests_to(self, api: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.api == api]

    # -- internals ----------------------------------------------------------------------
    def _next(self, api: str) -> Reply:
        with self._lock:
            queue = self._queues[api]
            return queue.popleft() if queue else Reply()

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _anthropic_success(self, body: Any) -> dict[str, Any]:
        prompt = _anthropic_prompt(body)
        return {
            "id": f"msg_fake_{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "unknown"),
            "content": [{"type": "text", "text": f"claude says: {prompt}"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": self.usage["input"], "output_tokens": self.usage["output"]},
        }

    def _gemini_success(self, model: str, body: Any) -> dict[str, Any]:
        prompt = _gemini_prompt(body)
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": f"gemini says: {prompt}"}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": self.usage["input"],
                "candidatesTokenCount": self.usage["output"],
                "totalTokenCount": self.usage["input"] + self.usage["output"],
            },
            "modelVersion": model,
            "responseId": f"resp_fake_{len(self.requests)}",
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the per-request stderr lines."""

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                path = self.path.split("?", 1)[0]
                gemini = _GEMINI_PATH.match(path)
                if path == "/v1/messages":
                    api = "anthropic"
                elif gemini:
                    api = "gemini"
                else:
                    self._send(404, {"error": {"message": f"no route {path}"}}, {})
                    return
                server._record(
                    Recorded(
                        api,
                        "POST",
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                reply = server._next(api)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                payload = reply.body
                if payload is None:
                    payload = (
                        server._anthropic_success(body)
                        if api == "anthropic"
                        else server._gemini_success(gemini.group("model") if gemini else "", body)
                    )
                self._send(reply.status, payload, reply.headers)

            def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to tell it

        return Handler


def _anthropic_prompt(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not messages:
        return ""
    content = messages[-1].get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _gemini_prompt(body: Any) -> str:
    contents = body.get("contents") if isinstance(body, dict) else None
    if not contents:
        return ""
    parts = contents[-1].get("parts") or []
    return "".join(part.get("text", "") for part in parts if isinstance(part, dict))
