"""The ``sandbox`` tier: the kernel enforces the grants even where the audit hook is
bypassed (here: plugin code granted ``native_code`` calls libc directly through ctypes,
which the audit hook then allows)."""

from __future__ import annotations

import socket
import textwrap
from typing import Any

import pytest

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.isolation import sandbox
from pipeline_ex.plugins.permissions import parse

AVAILABLE = sandbox.layers_available()
MISSING = [layer for layer in sandbox.REQUIRED_LAYERS if layer not in AVAILABLE]
needs_sandbox = pytest.mark.skipif(
    bool(MISSING), reason=f"this kernel lacks sandbox layer(s): {', '.join(MISSING)}"
)

LIBC = """
    import ctypes, errno, os, struct

    def result(value):
        return {"value": value, "errno": errno.errorcode.get(ctypes.get_errno(), "")}

    def lib():
        return ctypes.CDLL(None, use_errno=True)

    def c_open(path, flags):
        libc = lib()
        return result(libc.open(path.encode(), flags, 0o644))

    def c_connect(port):
        libc = lib()
        fd = libc.socket(2, 1, 0)
        if fd < 0:
            return result(fd)
        address = struct.pack("<H", 2) + struct.pack(">H", port) + bytes([127, 0, 0, 1]) + bytes(8)
        return result(libc.connect(fd, address, 16))

    class Step:
        def execute(self, step, context):
            libc = lib() if "libc" in step["code"] else None
            scope = {"libc": libc, "c_open": c_open, "c_connect": c_connect, "result": result,
                     "os": os}
            exec(step["code"], scope)
            return scope["out"]

    def init(config):
        return config

    def get_metadata(state):
        return {"name": "boxed"}

    def get_step_types(state):
        return [("run", Step())]
"""


def run(plugin: Any, code: str) -> Any:
    state = plugin._state or plugin.init({})
    ((_, step),) = plugin.get_step_types(state)
    return step.execute({"code": textwrap.dedent(code)}, None)


def grants(*texts: str) -> tuple[Any, ...]:
    return tuple(parse(t, plugin="boxed") for t in texts)


@needs_sandbox
def test_sandbox_lists_its_layers_and_serves(start, write_plugin, still_serving) -> None:
    plugin = start(write_plugin(LIBC, name="boxed"), name="boxed", tier="sandbox")
    assert plugin.kind == "sandbox"
    assert set(sandbox.REQUIRED_LAYERS) <= set(plugin.layers)
    assert run(plugin, "out = 6 * 7") == 42
    still_serving()


@needs_sandbox
def test_kernel_refuses_files_outside_grants(start, write_plugin, tmp_path, still_serving) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    plugin = start(
        write_plugin(LIBC, name="boxed"),
        name="boxed",
        tier="sandbox",
        grants=grants("native_code", f"filesystem:write:{allowed}"),
    )
    import os

    write = os.O_WRONLY | os.O_CREAT
    out = run(
        plugin, f"out = [c_open({str(tmp_path / 'x')!r}, {write}), c_open({str(secret)!r}, 0)]"
    )
    assert out == [{"value": -1, "errno": "EACCES"}, {"value": -1, "errno": "EACCES"}]
    out = run(plugin, f"out = c_open({str(allowed / 'ok')!r}, {write})")
    assert out["value"] >= 0
    assert (allowed / "ok").exists() and not (tmp_path / "x").exists()
    still_serving()


@needs_sandbox
def test_kernel_refuses_process_creation(start, write_plugin, still_serving) -> None:
    plugin = start(
        write_plugin(LIBC, name="boxed"), name="boxed", tier="sandbox", grants=grants("native_code")
    )
    assert run(plugin, "out = result(libc.fork())") == {"value": -1, "errno": "EPERM"}
    out = run(plugin, "out = result(libc.execv(b'/bin/true', None))")
    assert out["value"] == -1 and out["errno"] in ("EPERM", "EACCES")
    # threads still work (clone with CLONE_THREAD)
    assert (
        run(
            plugin,
            "import threading\nt = threading.Thread(target=len, args=('',))\n"
            "t.start(); t.join(); out = 'ok'",
        )
        == "ok"
    )
    still_serving()


@needs_sandbox
def test_kernel_refuses_sockets_and_ports_outside_grants(
    start, write_plugin, still_serving
) -> None:
    with socket.socket() as granted, socket.socket() as other:
        for server in (granted, other):
            server.bind(("127.0.0.1", 0))
            server.listen()
        port, other_port = granted.getsockname()[1], other.getsockname()[1]
        closed = start(
            write_plugin(LIBC, name="boxed"),
            name="boxed",
            tier="sandbox",
            grants=grants("native_code"),
        )
        assert run(closed, "out = result(libc.socket(2, 1, 0))") == {"value": -1, "errno": "EPERM"}
        opened = start(
            write_plugin(LIBC, name="boxed"),
            name="boxed",
            tier="sandbox",
            grants=grants("native_code", f"network:127.0.0.1:{port}"),
        )
        assert run(opened, f"out = c_connect({port})")["value"] == 0
        assert run(opened, f"out = c_connect({other_port})")["errno"] == "EACCES"
    still_serving()


@needs_sandbox
def test_the_audit_hook_still_answers_first_in_the_sandbox(start, write_plugin) -> None:
    plugin = start(write_plugin(LIBC, name="boxed"), name="boxed", tier="sandbox")
    with pytest.raises(PluginError) as caught:
        run(plugin, "out = libc.getpid()")
    assert caught.value.code == "permission_denied"


def test_missing_layers_refuse_unless_degrading_is_allowed(monkeypatch) -> None:
    monkeypatch.setattr(sandbox, "layers_available", lambda: [sandbox.SECCOMP])
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    with pytest.raises(sandbox.SandboxUnavailable, match="sandbox_degrade: allow") as caught:
        sandbox.apply([], degrade=False)
    assert "landlock_fs" in str(caught.value) and "landlock_net" in str(caught.value)
    monkeypatch.setattr(sandbox, "layers_available", lambda: [])
    assert sandbox.apply([], degrade=True) == []  # nothing in force, and nothing applied


def test_a_missing_layer_fails_the_start_with_a_clear_message(
    start, write_plugin, monkeypatch
) -> None:
    from pipeline_ex.plugins.isolation import host

    # a kernel without Landlock, as the child sees it: its sandbox module reports ABI 0
    boot = host._BOOTSTRAP.replace(
        "from _pipeline_ex_isolation.child import main\n",
        "from _pipeline_ex_isolation import sandbox\n"
        "sandbox.landlock_abi = lambda: 0\n"
        "from _pipeline_ex_isolation.child import main\n",
    )
    assert boot != host._BOOTSTRAP
    monkeypatch.setattr(host, "_BOOTSTRAP", boot)
    with pytest.raises(PluginError) as caught:
        start(write_plugin(LIBC, name="boxed"), name="boxed", tier="sandbox")
    assert caught.value.code == "validation_failed"
    assert "lacks sandbox layer(s) landlock_fs, landlock_net" in caught.value.message
    assert "sandbox_degrade: allow" in caught.value.message
    degraded = start(
        write_plugin(LIBC, name="boxed"), name="boxed", tier="sandbox", sandbox_degrade=True
    )
    assert "landlock_fs" not in degraded.layers
    assert ("seccomp" in degraded.layers) == ("seccomp" in AVAILABLE)
