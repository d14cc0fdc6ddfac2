"""``pipeline-ex serve`` as a real process: SIGTERM during a run, and start-up refusals."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from server_harness import HERE, TOKEN

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

LISTENING = re.compile(r"listening on (http://\S+)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from pipeline_ex.cli import main; main()", *args]


@contextmanager
def serve_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """A ``pipeline-ex serve --port 0`` process, its URL, and its stderr lines so far."""
    process = subprocess.Popen(
        _command("serve", "--port", "0", *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            match = LISTENING.search(line)
            if match:
                url.append(match.group(1))
                found.set()
        found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert found.wait(90) and url, f"serve did not start: {''.join(lines)}"
        yield process, url[0], lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        reader.join(10)


def _config(tmp_path: Path, log: Path) -> Path:
    config = {
        "plugins": {
            "flippy": {
                "module": "server_plugins:Flippy",
                "config": {"flag_file": str(tmp_path / "never")},
            },
            "rec_base": {
                "module": "server_plugins:Recorder",
                "config": {"name": "rec_base", "log_file": str(log)},
            },
            "rec_top": {
                "module": "server_plugins:Recorder",
                "config": {"name": "rec_top", "log_file": str(log), "dependencies": ["rec_base"]},
                "dependencies": ["rec_base"],
            },
        }
    }
    path = tmp_path / "plugins.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_lets_the_running_run_finish_then_shuts_plugins_down_in_order(
    tmp_path: Path, stop: signal.Signals
) -> None:
    log = tmp_path / "terminate.log"
    started = tmp_path / "run-started"
    workflow = (
        "workflow:\n  name: long\n  steps:\n"
        f"    - {{name: nap, type: sleep, seconds: 1.5, started_file: '{started}'}}\n"
        "    - {name: after, type: set_variable, variables: {done: true}}\n"
    )
    with serve_process("--plugins", str(_config(tmp_path, log)), "--grace-s", "60") as (
        process,
        url,
        lines,
    ):
        replies: list[Any] = []

        def run() -> None:
            try:
                replies.append(
                    httpx.post(
                        f"{url}/runs",
                        content=workflow,
                        headers={"Content-Type": "application/yaml"},
                        timeout=60,
                    )
                )
            except httpx.HTTPError as exc:
                replies.append(exc)

        client = threading.Thread(target=run)
        client.start()
        _wait_for(started)
        process.send_signal(stop)
        client.join(60)
        assert process.wait(60) == 0, "".join(lines)
        reply = replies[0]
        assert isinstance(reply, httpx.Response), reply
        assert reply.status_code == 200, reply.text
        assert reply.json()["results"]["after"]["variables"] == {"done": True}
        with pytest.raises(httpx.ConnectError):  # no longer taking requests
            httpx.get(f"{url}/healthz", timeout=5)
    terminated = log.read_text(encoding="utf-8").split()
    assert terminated == ["terminate:rec_top", "terminate:rec_base"]
    output = "".join(lines)
    assert f"stopping ({stop.name})" in output and "pipeline-ex serve: stopped" in output


def test_a_run_longer_than_the_grace_period_is_stopped(tmp_path: Path) -> None:
    log = tmp_path / "terminate.log"
    started = tmp_path / "run-started"
    workflow = (
        "workflow:\n  name: too-long\n  steps:\n"
        f"    - {{name: nap, type: sleep, seconds: 3, started_file: '{started}'}}\n"
        "    - {name: after, type: set_variable, variables: {done: true}}\n"
    )
    with serve_process("--plugins", str(_config(tmp_path, log)), "--grace-s", "1") as (
        process,
        url,
        lines,
    ):
        threading.Thread(target=lambda: _post_quietly(f"{url}/runs", workflow), daemon=True).start()
        _wait_for(started)
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, "".join(lines)
        assert time.monotonic() - began < 30
    assert "1 run(s) stopped unfinished" in "".join(lines)
    assert log.read_text(encoding="utf-8").split() == ["terminate:rec_top", "terminate:rec_base"]


def _post_quietly(url: str, workflow: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server gives up on it: the test's point
        httpx.post(url, content=workflow, headers={"Content-Type": "application/yaml"}, timeout=60)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args), capture_output=True, text=True, timeout=120, env=_env(), check=False
    )


def test_an_address_in_use_is_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run_cli("serve", "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert "[address_unavailable]" in result.stderr


def test_a_world_readable_token_file_is_exit_2(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN, encoding="utf-8")
    token.chmod(0o644)
    result = _run_cli("serve", "--port", "0", "--admin-token-file", str(token))
    assert result.returncode == 2
    assert "[admin_token_invalid]" in result.stderr and "chmod 600" in result.stderr
