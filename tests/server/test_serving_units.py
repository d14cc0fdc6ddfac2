"""Small parts of ``serving`` and ``run_gate`` that the HTTP tests reach only indirectly."""

from __future__ import annotations

import socket

import pytest

from pipeline_ex.errors import InvalidInputError
from pipeline_ex.server.run_gate import GateClosed, RunGate, RunStopped
from pipeline_ex.server.serving import bind, url_of
from pipeline_ex.server.settings import ServerSettings


def test_the_listening_socket_is_tcp_so_asyncio_turns_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on connections of IPPROTO_TCP sockets; with Nagle on,
    each answer on a kept-alive connection waited for the client's delayed ACK."""
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert url_of(sock).startswith("http://127.0.0.1:")
        with pytest.raises(InvalidInputError) as info:
            bind("127.0.0.1", sock.getsockname()[1])
        assert info.value.code == "address_unavailable"
    finally:
        sock.close()


def test_the_gate_admits_up_to_its_slots_then_drains() -> None:
    gate = RunGate(2)
    first, second = gate.admit(), gate.admit()
    with pytest.raises(GateClosed) as busy:
        gate.admit()
    assert busy.value.code == "too_many_runs"
    first.release()
    third = gate.admit()
    gate.drain()
    with pytest.raises(GateClosed) as closing:
        gate.admit()
    assert closing.value.code == "shutting_down"
    assert not gate.wait_idle(0.01)
    gate.stop_all("shutting_down", "stopping")
    with pytest.raises(RunStopped):
        second.check("step_started", {"name": "next"})
    second.release()
    third.release()
    assert gate.wait_idle(0.01) and gate.active == 0


@pytest.mark.parametrize(
    ("event", "where"),
    [
        ("step_started", "before step 'b'"),
        ("step_finished", "after step 'b'"),
        ("step_skipped", "after step 'b'"),
    ],
)
def test_a_stop_names_where_the_run_stood_by_the_event(event: str, where: str) -> None:
    ticket = RunGate(1).admit()
    ticket.stop("run_timeout", "too slow")
    with pytest.raises(RunStopped) as info:
        ticket.check(event, {"name": "b", "type": "x"})
    assert info.value.message == f"run stopped {where}: too slow"


@pytest.mark.parametrize(
    "options",
    [
        {"port": -1},
        {"max_body_bytes": 0},
        {"max_concurrent_runs": 0},
        {"run_timeout_s": float("inf")},
        {"body_timeout_s": 0},
        {"grace_s": 0},
        {"refresh_s": -1},
        {"admin_token": ""},
    ],
)
def test_settings_refuse_nonsense(options: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        ServerSettings(**options)  # type: ignore[arg-type]


def test_the_token_never_shows_in_the_settings_repr() -> None:
    assert "hunter2" not in repr(ServerSettings(admin_token="hunter2hunter2hunter2"))
