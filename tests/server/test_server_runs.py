"""``POST /runs`` and ``GET /runs`` over real HTTP: results, typed errors, and the bounds
(body size, run time, concurrent runs)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from server_plugins import GATES

YAML = {"Content-Type": "application/yaml"}

HELLO = """
workflow:
  name: hello
  steps:
    - name: remember
      type: set_variable
      variables:
        who: "{{inputs.who}}"
        count: "{{inputs.count}}"
"""


@pytest.fixture
def gate() -> Iterator[tuple[str, threading.Event]]:
    """A ``block`` step's gate: the step returns once the test sets the event."""
    key = uuid.uuid4().hex
    GATES[key] = threading.Event()
    try:
        yield key, GATES[key]
    finally:
        GATES.pop(key).set()


def blocking_workflow(key: str) -> str:
    return f"""
workflow:
  name: blocked
  steps:
    - name: wait
      type: block
      gate: {key}
    - name: after
      type: set_variable
      variables: {{done: true}}
"""


def test_a_yaml_workflow_runs_and_returns_its_results(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime() as live, live.client() as client:
        reply = client.post(
            "/runs", params={"who": "ada", "count": "3"}, content=HELLO, headers=YAML
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["outcome"] == "ok" and body["workflow"] == "hello"
        assert body["results"]["remember"]["variables"] == {"who": "ada", "count": 3}
        assert reply.headers["x-run-id"] == body["run_id"]


def test_a_json_workflow_takes_inputs_from_its_body(serve_runtime: Callable[..., Any]) -> None:
    document = {
        "workflow": {
            "name": "json-run",
            "steps": [{"name": "echo", "type": "set_variable", "variables": {"x": "{{inputs.x}}"}}],
        },
        "inputs": {"x": [1, 2]},
    }
    with serve_runtime() as live, live.client() as client:
        reply = client.post("/runs", json=document)
        assert reply.status_code == 200, reply.text
        assert reply.json()["results"]["echo"]["variables"] == {"x": [1, 2]}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ("workflow: [unclosed", YAML, 400, "yaml_invalid"),
        ("- just\n- a list\n", YAML, 400, "yaml_invalid"),
        ("workflow:\n  name: x\n", YAML, 400, "schema_invalid"),
        ('{"workflow": ', {"Content-Type": "application/json"}, 400, "json_invalid"),
        ('[{"workflow": {}}]', {"Content-Type": "application/json"}, 400, "json_invalid"),
        ("null", {"Content-Type": "application/json"}, 400, "json_invalid"),
        ('{"workflow": {"name": "x", "steps": []}, "inputs": [1]}',
         {"Content-Type": "application/json"}, 400, "inputs_invalid"),
        ("workflow:\n  name: x\n  steps:\n    - {name: a, type: nope}\n", YAML, 400,
         "workflow_invalid"),
        ("a: !!python/object:os.system x", YAML, 400, "yaml_invalid"),
        ("workflow: {}", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ("workflow: {}", {}, 415, "unsupported_media_type"),
    ],
)  # fmt: skip
def test_bad_bodies_get_the_typed_error_and_exit_class(
    serve_runtime: Callable[..., Any], body: str, headers: dict[str, str], status: int, code: str
) -> None:
    with serve_runtime() as live, live.client() as client:
        reply = client.post("/runs", content=body, headers=headers)
        assert reply.status_code == status, reply.text
        error = reply.json()["error"]
        assert error["code"] == code
        assert error["exit_code"] == 2  # as `pipeline-ex run` would exit: nothing ran


def test_document_errors_carry_each_problem_with_its_line(
    serve_runtime: Callable[..., Any],
) -> None:
    body = "workflow:\n  name: x\n  steps:\n    - name: a\n      type: nope\n"
    with serve_runtime() as live, live.client() as client:
        error = client.post("/runs", content=body, headers=YAML).json()["error"]
    (problem,) = error["problems"]
    assert problem["path"] == "workflow.steps[0].type" and problem["line"] == 5
    assert "unknown step type 'nope'" in problem["message"]


def test_inputs_in_both_query_and_body_are_refused(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime() as live, live.client() as client:
        reply = client.post(
            "/runs", params={"x": "1"}, content=HELLO + "inputs: {x: 2}\n", headers=YAML
        )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "inputs_invalid"


def test_a_failing_step_is_422_with_the_results_before_it(
    serve_runtime: Callable[..., Any],
) -> None:
    body = """
workflow:
  name: fails
  steps:
    - name: first
      type: set_variable
      variables: {a: 1}
    - name: broken
      type: fail
      why: on purpose
"""
    with serve_runtime() as live, live.client() as client:
        reply = client.post("/runs", content=body, headers=YAML)
    assert reply.status_code == 422
    payload = reply.json()
    assert payload["error"]["code"] == "step_failed" and payload["error"]["exit_code"] == 1
    assert payload["error"]["step"] == "broken" and payload["error"]["reason"] == "on purpose"
    assert payload["results"]["first"]["variables"] == {"a": 1}


def test_a_run_cannot_read_the_servers_files(
    serve_runtime: Callable[..., Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``file`` prompt part resolves in the run's empty scratch folder, never in the
    server's working directory."""
    (tmp_path / "secret.txt").write_text("the server's secret", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    body = """
workflow:
  name: snoop
  steps:
    - name: ask
      type: claude
      prompt:
        - type: file
          path: secret.txt
"""
    with serve_runtime() as live, live.client() as client:
        reply = client.post("/runs", content=body, headers=YAML)
    assert "the server's secret" not in reply.text
    assert reply.status_code == 422 and "secret.txt" in reply.json()["error"]["message"]


def test_oversized_bodies_are_refused_with_413(serve_runtime: Callable[..., Any]) -> None:
    big = HELLO + "#" * 5000 + "\n"
    with serve_runtime(max_body_bytes=1024) as live, live.client() as client:
        declared = client.post("/runs", content=big, headers=YAML)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "body_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            for _ in range(10):
                yield b"#" * 500 + b"\n"

        streamed = client.post("/runs", content=chunks(), headers=YAML)
        assert streamed.status_code == 413
        # the server still serves after refusing
        ok = client.post("/runs", params={"who": "x", "count": "1"}, content=HELLO, headers=YAML)
        assert ok.status_code == 200


def test_runs_over_the_concurrency_bound_get_429_then_go_through(
    serve_runtime: Callable[..., Any], gate: tuple[str, threading.Event]
) -> None:
    key, release = gate
    with serve_runtime(max_concurrent_runs=1) as live, live.client() as client:
        replies: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: replies.append(
                client.post("/runs", content=blocking_workflow(key), headers=YAML)
            )
        )
        first.start()
        _wait_for(lambda: live.server.gate.active == 1)
        refused = client.post(
            "/runs", params={"who": "x", "count": "1"}, content=HELLO, headers=YAML
        )
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_runs"
        assert refused.headers["retry-after"] == "1"
        # the event loop is not held up by the run: other requests are answered meanwhile
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200
        release.set()
        first.join(30)
        assert replies[0].status_code == 200
        again = client.post("/runs", params={"who": "x", "count": "1"}, content=HELLO, headers=YAML)
        assert again.status_code == 200


def test_a_run_past_its_time_is_504_and_stops_at_its_next_step(
    serve_runtime: Callable[..., Any], gate: tuple[str, threading.Event]
) -> None:
    key, release = gate
    with serve_runtime(run_timeout_s=0.5, max_concurrent_runs=1) as live, live.client() as client:
        started = time.monotonic()
        reply = client.post("/runs", content=blocking_workflow(key), headers=YAML)
        assert reply.status_code == 504
        assert reply.json()["error"]["code"] == "run_timeout"
        assert time.monotonic() - started < 20
        # still holding its slot while its step runs on
        assert live.server.gate.active == 1
        release.set()
        _wait_for(lambda: live.server.gate.active == 0)
        runs = client.get("/runs").json()["runs"]
    blocked = next(r for r in runs if r["workflow"] == "blocked")
    assert blocked["outcome"] != "ok" and blocked["steps"] == 1  # 'after' never ran


def test_get_runs_lists_recent_runs_newest_first(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime() as live, live.client() as client:
        run_ids = []
        for who in ("a", "b", "c"):
            body = HELLO.replace("name: hello", f"name: hello-{who}")
            reply = client.post(
                "/runs", params={"who": who, "count": "1"}, content=body, headers=YAML
            )
            assert reply.status_code == 200
            run_ids.append(reply.json()["run_id"])
        runs = client.get("/runs", params={"limit": 2}).json()["runs"]
        assert [r["workflow"] for r in runs] == ["hello-c", "hello-b"]
        assert all(r["source"] == "server" and r["outcome"] == "ok" for r in runs)
        assert [r["id"] for r in runs] == run_ids[:0:-1]  # the answers' ids
        assert client.get("/runs", params={"limit": 0}).status_code == 400
        assert client.get("/runs", params={"limit": "many"}).status_code == 400


def test_json_answers_stay_strict_json(serve_runtime: Callable[..., Any]) -> None:
    """A result holding a non-finite number is still valid JSON (null), as with --json."""
    body = """
workflow:
  name: nan
  steps:
    - name: big
      type: set_variable
      variables: {x: .inf}
"""
    with serve_runtime() as live, live.client() as client:
        reply = client.post("/runs", content=body, headers=YAML)
    assert reply.status_code == 200
    parsed = json.loads(reply.text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert parsed["results"]["big"]["variables"]["x"] is None


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


def _start_slow_post(url: str, body: bytes, declared: int) -> socket.socket:
    """A raw connection that sends a ``POST /runs`` head and only part of its body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST /runs HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/yaml\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    return sock


def test_slow_bodies_do_not_hold_run_slots(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime(max_concurrent_runs=1) as live, live.client() as client:
        slow = _start_slow_post(live.url, b"workflow:\n", 1000)
        try:
            # its request is in the app, waiting for the rest of its body
            _wait_for(lambda: len(live.server.server_state.tasks) == 1)
            reply = client.post(
                "/runs", params={"who": "x", "count": "1"}, content=HELLO, headers=YAML
            )
            assert reply.status_code == 200, reply.text
            assert live.server.gate.active == 0
        finally:
            slow.close()


def test_a_body_slower_than_the_body_timeout_is_408(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime(body_timeout_s=0.2) as live:
        slow = _start_slow_post(live.url, b"workflow:\n", 1000)
        try:
            answer = slow.makefile("rb").read()  # the server answers, then closes
        finally:
            slow.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    error = json.loads(body)["error"]
    assert error["code"] == "body_timeout" and "--body-timeout-s 0.2" in error["message"]
    assert live.server.gate.active == 0


def test_a_client_gone_mid_body_is_no_server_error(
    serve_runtime: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), serve_runtime() as live, live.client() as client:
        slow = _start_slow_post(live.url, b"workflow:\n", 1000)
        _wait_for(lambda: len(live.server.server_state.tasks) == 1)
        slow.close()
        _wait_for(lambda: not live.server.server_state.tasks)
        assert live.server.gate.active == 0
        assert client.get("/healthz").status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert any("went away while sending its body" in r.getMessage() for r in caplog.records)


def test_while_runs_finish_after_a_stop_new_requests_get_503(
    serve_runtime: Callable[..., Any], gate: tuple[str, threading.Event]
) -> None:
    """The listener stays open while draining: a load balancer polling /healthz sees 503
    ``stopping`` (not a refused connection), and a new run is refused with 503."""
    key, release = gate
    with serve_runtime(grace_s=60) as live, live.client() as client:
        replies: list[httpx.Response] = []
        running = threading.Thread(
            target=lambda: replies.append(
                client.post("/runs", content=blocking_workflow(key), headers=YAML)
            )
        )
        running.start()
        _wait_for(lambda: live.server.gate.active == 1)
        live.server.request_stop()
        # the event loop has seen the stop: draining (or, without draining, stopped listening)
        _wait_for(
            lambda: (
                getattr(live.server, "draining", False)
                or not all(s.is_serving() for s in live.server.servers)
            )
        )
        with live.client() as fresh:  # a new connection
            health = fresh.get("/healthz")
            assert health.status_code == 503 and health.json()["status"] == "stopping"
            refused = fresh.post("/runs", content=HELLO, headers=YAML)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
        release.set()
        running.join(30)
        assert replies[0].status_code == 200  # the run in flight finished
        _wait_for(lambda: not any(s.is_serving() for s in live.server.servers))
