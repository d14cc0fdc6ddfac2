"""The ``process`` tier against hostile plugins.

Every case ends with a typed ``PluginError``, the host alive and another isolated plugin
(``bystander``) still serving; the ``start`` fixture checks that no child outlives a test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.isolation import RemoteError, RestartPolicy
from pipeline_ex.plugins.permissions import parse
from waiting import PATIENCE

BEHAVING = """
    import time

    def act(how, where):
        if not how or how.get("where") != where:
            return
        if how["action"] == "raise":
            raise ValueError(f"boom in {where}")
        if how["action"] == "hang":
            time.sleep(600)

    class Step:
        raw_keys = ("body",)
        def __init__(self, how):
            self.how = how
        def execute(self, step, context):
            act(self.how, "execute")
            return {"success": True, "seen": step}
        def preflight(self, step, context):
            act(self.how, "preflight")
        def semantic_check(self, step):
            act(self.how, "semantic_check")
            return [("workflow.steps[0]", "looks odd")]

    class Provider:
        def __init__(self, how):
            self.how = how
        def query(self, prompt, options):
            act(self.how, "query")
            return {"text": prompt[::-1], "success": True, "cost": 0.0}

    def init(config):
        act(config, "init")
        return dict(config, calls=0)

    def get_metadata(state):
        act(state, "get_metadata")
        return {"name": "hostile", "version": "1.0.0", "api_version": 1}

    def get_step_types(state):
        act(state, "get_step_types")
        return [("hostile_step", Step(state))]

    def get_providers(state):
        act(state, "get_providers")
        return [("hostile_provider", Provider(state), ["text_generation"])]

    def get_schema_extensions(state):
        act(state, "get_schema_extensions")
        return [("hostile", {"properties": {}})]

    def health_check(state):
        act(state, "health_check")
        return "fine"

    def terminate(state):
        act(state, "terminate")
"""

WHERE = [
    "init",
    "get_metadata",
    "get_step_types",
    "get_providers",
    "get_schema_extensions",
    "execute",
    "preflight",
    "semantic_check",
    "query",
    "health_check",
    "terminate",
]


class Context:
    """A stand-in for the engine's ExecutionContext (data only)."""

    results: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    workflow: dict[str, Any] = {}


def drive(plugin, config: dict[str, Any]) -> None:
    """Every contract call and component call once, in the manager's order."""
    state = plugin.init(config)
    assert plugin.get_metadata(state)["name"] == "hostile"
    ((_, step),) = plugin.get_step_types(state)
    ((_, provider, caps),) = plugin.get_providers(state)
    assert caps == ["text_generation"]
    assert plugin.get_schema_extensions(state) == [("hostile", {"properties": {}})]
    assert step.execute({"body": 1}, Context())["success"] is True
    step.preflight({}, Context())
    assert step.semantic_check({}) == [("workflow.steps[0]", "looks odd")]
    assert provider.query("abc", {})["text"] == "cba"
    assert plugin.health_check(state) == "fine"
    plugin.terminate(state)


def test_a_behaving_plugin_serves_every_call(start, write_plugin, still_serving) -> None:
    plugin = start(write_plugin(BEHAVING))
    assert plugin.kind == "process" and plugin.status == "running" and plugin.layers == ()
    drive(plugin, {})
    still_serving()


@pytest.mark.parametrize("where", WHERE)
def test_raising_in_every_callback_is_a_typed_error(
    start, write_plugin, still_serving, where: str
) -> None:
    plugin = start(write_plugin(BEHAVING))
    with pytest.raises(RemoteError) as caught:
        drive(plugin, {"where": where, "action": "raise"})
    error = caught.value
    expected = {"init": "init_failed"}.get(where, "crashed")
    if where.startswith("get_") or where == "semantic_check":
        expected = "validation_failed"
    assert error.code == expected
    assert error.plugin == "hostile"
    assert error.remote_type == "ValueError"
    assert f"boom in {where}" in error.message
    assert error.traceback is not None and "ValueError" in error.traceback
    assert plugin.status == "running" and plugin.restarts == 0  # the child carries on
    assert plugin._call("ping", [], "ping") == "pong"
    still_serving()


@pytest.mark.parametrize(
    "where",
    # each case waits out the 1 s call deadline: one stays in the quick loop
    [w if w == "execute" else pytest.param(w, marks=pytest.mark.slow) for w in WHERE],
)
def test_hanging_in_every_callback_times_out_and_restarts(
    start, write_plugin, still_serving, where: str
) -> None:
    plugin = start(write_plugin(BEHAVING), timeout=1.0)
    first = plugin.pid
    with pytest.raises(PluginError) as caught:
        drive(plugin, {"where": where, "action": "hang"})
    assert caught.value.code == "timeout"
    assert "did not answer within 1.0 s" in caught.value.message
    assert not Path(f"/proc/{first}").exists()  # killed and reaped
    assert plugin.status == "running" and plugin.restarts == 1 and plugin.pid != first
    still_serving()


def test_restarted_child_is_reinitialised_with_the_same_config(start, write_plugin) -> None:
    plugin = start(
        write_plugin(
            """
            import os
            class Step:
                def __init__(self, state):
                    self.state = state
                def execute(self, step, context):
                    if step.get("crash"):
                        os._exit(9)
                    self.state["calls"] += 1
                    return {"calls": self.state["calls"], "greeting": self.state["greeting"]}
            def init(config):
                return {"greeting": config["greeting"], "calls": 0}
            def get_metadata(state):
                return {"name": "hostile", "version": "1.0.0"}
            def get_step_types(state):
                return [("count", Step(state))]
            """
        )
    )
    state = plugin.init({"greeting": "hi"})
    ((_, step),) = plugin.get_step_types(state)
    assert step.execute({}, Context())["calls"] == 1
    assert step.execute({}, Context())["calls"] == 2
    with pytest.raises(PluginError) as caught:
        step.execute({"crash": True}, Context())
    assert caught.value.code == "crashed"
    assert "exited with status 9" in caught.value.message
    assert "restarted (1 of 3 in 60 s)" in caught.value.message
    # state is lost on a crash: the new child starts again from init(config)
    assert step.execute({}, Context()) == {"calls": 1, "greeting": "hi"}
    assert plugin.get_metadata(state)["name"] == "hostile"


def test_lying_components_are_refused(start, write_plugin, still_serving) -> None:
    plugin = start(
        write_plugin(
            """
            import itertools
            class NoExecute:
                pass
            class Weird:
                raw_keys = 5
                def execute(self, step, context):
                    return {}
            def init(config):
                return config
            def get_metadata(state):
                return {"name": "hostile", "version": object(), "extra": {1: 2}}
            def get_step_types(state):
                return [("a", NoExecute)] if state["mode"] == "a" else [("b", Weird())]
            def get_providers(state):
                return ((f"p{i}", object(), []) for i in itertools.count())
            def get_schema_extensions(state):
                return "not a list"
            """
        ),
        timeout=PATIENCE,  # the endless providers are read to the bound: seconds under load
    )
    state = plugin.init({"mode": "a"})
    metadata = plugin.get_metadata(state)
    assert metadata["version"].startswith("<object object")  # text, not an object
    assert metadata["extra"] == {"1": 2}
    for call in (plugin.get_step_types, plugin.get_providers, plugin.get_schema_extensions):
        with pytest.raises(PluginError) as caught:
            call(state)
        assert caught.value.code == "validation_failed"
    state = plugin.init({"mode": "b"})
    with pytest.raises(PluginError, match="raw_keys") as caught:
        plugin.get_step_types(state)
    assert caught.value.code == "validation_failed"
    assert plugin.restarts == 0
    still_serving()


def test_an_oversized_answer_is_an_error_not_a_hang(start, write_plugin, still_serving) -> None:
    plugin = start(
        write_plugin(
            """
            def init(config):
                return config
            def get_metadata(state):
                return {"name": "hostile", "blob": "x" * (64 * 1024 * 1024)}
            """
        )
    )
    state = plugin.init({})
    with pytest.raises(PluginError, match="exceeds the maximum") as caught:
        plugin.get_metadata(state)
    assert caught.value.code == "validation_failed"
    still_serving()


GARBAGE = """
    import os, struct
    def init(config):
        return config
    def get_metadata(state):
        if state:
            garbage = struct.pack(">I", 4) + b"\\xc1\\xc1\\xc1\\xc1"
            payload = {"garbage": garbage, "huge": struct.pack(">I", 2**31)}
            for fd in range(3, 1024):
                try:
                    os.write(fd, payload[state["what"]])
                except OSError:
                    pass
            import time
            time.sleep(600)
        return {"name": "hostile"}
"""


@pytest.mark.parametrize("what", ["garbage", "huge"])
def test_a_child_writing_garbage_to_its_pipe_is_killed(
    start, write_plugin, still_serving, what: str
) -> None:
    plugin = start(write_plugin(GARBAGE))
    state = plugin.init({"what": what})
    first = plugin.pid
    with pytest.raises(PluginError, match="bad frame") as caught:
        plugin.get_metadata(state)
    assert caught.value.code == "crashed"
    assert not Path(f"/proc/{first}").exists()
    assert plugin.status == "running" and plugin.restarts == 1
    still_serving()


@pytest.mark.parametrize(
    ("source", "code", "text"),
    [
        ("raise RuntimeError('no')", "validation_failed", "cannot import: RuntimeError: no"),
        ("import os\nos._exit(4)", "crashed", "exited with status 4"),
        ("open('/tmp/pipeline-ex-import-side-effect', 'w')", "permission_denied", "for writing"),
        pytest.param(  # waits out the 1 s start deadline
            "import time\ntime.sleep(600)",
            "timeout",
            "did not start within 1.0 s",
            marks=pytest.mark.slow,
        ),
        ("x = 1", "validation_failed", "has no init()"),
    ],
    ids=["raises", "exits", "writes", "hangs", "no-contract"],
)
def test_import_time_misbehaviour_fails_the_start(
    start, write_plugin, still_serving, source: str, code: str, text: str
) -> None:
    # Only the hang needs a short start deadline; the others must be told apart from a slow
    # start on a busy machine, so they keep the generous default.
    start_timeout = {"start_timeout_s": 1.0} if code == "timeout" else {}
    with pytest.raises(PluginError) as caught:
        start(write_plugin(source), **start_timeout)
    assert caught.value.code == code
    assert text in caught.value.message
    assert not Path("/tmp/pipeline-ex-import-side-effect").exists()
    still_serving()


ACTIONS = """
    import os
    def init(config):
        return config
    def get_metadata(state):
        return {"name": "hostile"}
    class Step:
        def execute(self, step, context):
            exec(step["code"], {"step": step})
            return {"success": True}
    def get_step_types(state):
        return [("act", Step())]
"""


def run_action(plugin, code: str) -> Any:
    state = plugin.init({})
    ((_, step),) = plugin.get_step_types(state)
    return step.execute({"code": textwrap.dedent(code)}, Context())


def test_writing_outside_grants_is_denied(start, write_plugin, tmp_path, still_serving) -> None:
    allowed = tmp_path / "out"
    allowed.mkdir()
    plugin = start(
        write_plugin(ACTIONS),
        grants=(parse(f"filesystem:write:{allowed}", plugin="hostile"),),
    )
    assert run_action(plugin, f"open({str(allowed / 'ok.txt')!r}, 'w').write('fine')")
    assert (allowed / "ok.txt").read_text() == "fine"
    outside = tmp_path / "outside.txt"
    with pytest.raises(PluginError) as caught:
        run_action(plugin, f"open({str(outside)!r}, 'w')")
    assert caught.value.code == "permission_denied"
    assert f"open {str(outside)!r} for writing" in caught.value.message
    # denied even when the plugin swallows the PermissionError
    keep = tmp_path / "keep.txt"
    keep.write_text("keep")
    with pytest.raises(PluginError) as caught:
        run_action(
            plugin,
            f"import os\ntry:\n    os.remove({str(keep)!r})\nexcept PermissionError:\n    pass",
        )
    assert caught.value.code == "permission_denied"
    assert "os.remove" in caught.value.message and keep.exists()
    with pytest.raises(PluginError) as caught:
        run_action(
            plugin,
            f"import os\ntry:\n    os.open({str(outside)!r}, os.O_WRONLY | os.O_CREAT)\n"
            "except PermissionError:\n    pass",
        )
    assert caught.value.code == "permission_denied"
    assert not outside.exists()
    # a symlink inside the grant that points outside does not get around it
    (allowed / "link").symlink_to(tmp_path)
    with pytest.raises(PluginError) as caught:
        run_action(plugin, f"open({str(allowed / 'link' / 'escape.txt')!r}, 'w')")
    assert caught.value.code == "permission_denied"
    assert plugin.restarts == 0
    still_serving()


def test_network_outside_grants_is_denied(start, write_plugin, still_serving) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        connect = (
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).close()"
        )
        plugin = start(write_plugin(ACTIONS))
        with pytest.raises(PluginError) as caught:
            run_action(plugin, connect)
        assert caught.value.code == "permission_denied"
        assert f"socket connect to ('127.0.0.1', {port})" in caught.value.message
        with pytest.raises(PluginError, match="socket bind") as caught:
            run_action(plugin, "import socket\nsocket.socket().bind(('127.0.0.1', 0))")
        granted = start(
            write_plugin(ACTIONS),
            grants=(parse(f"network:127.0.0.1:{port}", plugin="hostile"),),
        )
        assert run_action(granted, connect)["success"] is True
        with pytest.raises(PluginError) as caught:  # another port of the same host
            run_action(granted, "import socket\nsocket.socket().connect(('127.0.0.1', 1))")
        assert caught.value.code == "permission_denied"
    still_serving()


@pytest.mark.parametrize(
    "code",
    [
        "import subprocess\nsubprocess.run(['true'])",
        "import os\nos.system('true')",
        "import os\nos.posix_spawn('/bin/true', ['true'], {})",
        "import os\nos.fork()",
    ],
    ids=["subprocess", "system", "posix_spawn", "fork"],
)
def test_process_creation_is_denied(start, write_plugin, still_serving, code: str) -> None:
    plugin = start(write_plugin(ACTIONS))
    with pytest.raises(PluginError) as caught:
        run_action(plugin, code)
    assert caught.value.code == "permission_denied"
    assert "process creation" in caught.value.message
    assert "without the subprocess grant" in caught.value.message
    still_serving()


def test_native_code_needs_its_grant(start, write_plugin, still_serving) -> None:
    plugin = start(write_plugin(ACTIONS))
    with pytest.raises(PluginError) as caught:
        run_action(plugin, "import ctypes\nctypes.CDLL(None).getpid()")
    assert caught.value.code == "permission_denied"
    assert "native code (ctypes.dlopen)" in caught.value.message
    granted = start(write_plugin(ACTIONS), grants=(parse("native_code", plugin="hostile"),))
    assert run_action(granted, "import ctypes\nctypes.CDLL(None).getpid()")["success"] is True
    still_serving()


def test_memory_exhaustion_is_a_crash(start, write_plugin, still_serving) -> None:
    plugin = start(write_plugin(ACTIONS), memory_mb=256)
    first = plugin.pid
    with pytest.raises(PluginError) as caught:
        run_action(plugin, "blob = bytearray(1024 * 1024 * 1024)")
    assert caught.value.code == "crashed"
    assert "ran out of memory (memory_mb=256)" in caught.value.message
    assert not Path(f"/proc/{first}").exists()
    assert plugin.status == "running" and plugin.restarts == 1
    still_serving()


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("import ctypes\nctypes.string_at(0)", "was killed by SIGSEGV"),
        ("import os\nos._exit(3)", "exited with status 3"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "was killed by SIGKILL"),
        ("import os\nos.closerange(3, 64)\nimport time\ntime.sleep(600)", ""),
    ],
    ids=["segfault", "os._exit", "sigkill", "closes-pipes"],
)
def test_a_dying_child_is_detected_and_reaped(
    start, write_plugin, still_serving, code: str, text: str
) -> None:
    plugin = start(write_plugin(ACTIONS), grants=(parse("native_code", plugin="hostile"),))
    first = plugin.pid
    with pytest.raises(PluginError) as caught:
        run_action(plugin, code)
    assert caught.value.code == "crashed"
    assert text in caught.value.message
    assert f"pid {first}" in caught.value.message
    assert not Path(f"/proc/{first}").exists()
    assert plugin.status == "running" and plugin.restarts == 1
    still_serving()


def test_a_used_up_restart_budget_fails_the_plugin(start, write_plugin, still_serving) -> None:
    failures: list[PluginError] = []
    plugin = start(
        write_plugin(ACTIONS),
        restart=RestartPolicy(max_restarts=2, window_s=60.0),
        on_failed=failures.append,
    )
    state = plugin.init({})
    ((_, step),) = plugin.get_step_types(state)
    crash = {"code": "import os\nos._exit(1)"}
    for attempt in (1, 2):
        with pytest.raises(PluginError, match=f"restarted \\({attempt} of 2"):
            step.execute(crash, Context())
    with pytest.raises(PluginError, match="restart budget used up") as caught:
        step.execute(crash, Context())
    assert caught.value.code == "crashed"
    assert plugin.status == "failed" and plugin.pid is None
    assert len(failures) == 1 and failures[0].code == "crashed"
    assert "2 restart(s) within 60 s used up" in failures[0].message
    with pytest.raises(PluginError) as later:  # its step types answer with that error
        step.execute({"code": "pass"}, Context())
    assert later.value is failures[0]
    still_serving()


def test_child_environment_is_scrubbed_to_the_granted_names(
    start, write_plugin, monkeypatch
) -> None:
    monkeypatch.setenv("PIPELINE_EX_TEST_SECRET", "hidden")
    monkeypatch.setenv("PIPELINE_EX_TEST_GRANTED", "visible")
    plugin = start(
        write_plugin(
            """
            import os
            def init(config):
                return config
            def get_metadata(state):
                fds = os.listdir("/proc/self/fd")
                return {"name": "hostile", "env": dict(os.environ), "fds": fds}
            """
        ),
        env={"PIPELINE_EX_TEST_GRANTED"},
    )
    metadata = plugin.get_metadata(plugin.init({}))
    assert metadata["env"].get("PIPELINE_EX_TEST_GRANTED") == "visible"
    assert "PIPELINE_EX_TEST_SECRET" not in metadata["env"]
    assert "PATH" not in metadata["env"] and "HOME" not in metadata["env"]
    # stdin/stdout/stderr, the two pipes, the lifeline, and listdir's own descriptor
    assert len(metadata["fds"]) <= 7


def test_close_is_idempotent_and_later_calls_are_not_loaded(start, write_plugin) -> None:
    plugin = start(write_plugin(BEHAVING))
    state = plugin.init({})
    pid = plugin.pid
    plugin.close()
    plugin.close()
    assert plugin.status == "closed" and not Path(f"/proc/{pid}").exists()
    with pytest.raises(PluginError) as caught:
        plugin.get_metadata(state)
    assert caught.value.code == "not_loaded"


HOST_SCRIPT = """
import sys, time
from pipeline_ex.plugins.isolation import IsolationSpec, ProcessPlugin
plugin = ProcessPlugin.start(IsolationSpec(plugin="hostile", directory=sys.argv[1]))
print(plugin.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow  # starts a host interpreter that starts a child
def test_the_child_exits_when_its_host_is_killed(write_plugin) -> None:
    directory = write_plugin(BEHAVING)
    host = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT, str(directory)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout is not None
        child = int(host.stdout.readline())
        assert Path(f"/proc/{child}").exists()
        host.send_signal(signal.SIGKILL)
        host.wait()
        deadline = time.monotonic() + 30  # generous: a busy machine, not a timing assertion
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not Path(f"/proc/{child}").exists(), "the child outlived its killed host"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()


def test_no_child_is_left_after_many_starts_and_closes(start, write_plugin) -> None:
    directory = write_plugin(BEHAVING)
    for _ in range(5):
        start(directory).close()
    assert os.getpid() > 0  # the start fixture asserts no leftover children


def test_importing_a_plugin_writes_no_bytecode_into_its_directory(start, write_plugin) -> None:
    """Found while building: the child's import system wrote ``__pycache__`` beside the
    plugin, which the audit hook (rightly) denied, failing every directory plugin."""
    directory = write_plugin(
        """
        from . import helper
        def init(config):
            return config
        def get_metadata(state):
            return {"name": "hostile", "helper": helper.VALUE}
        """
    )
    (directory / "helper.py").write_text("VALUE = 7\n", encoding="utf-8")
    plugin = start(directory)
    assert plugin.get_metadata(plugin.init({}))["helper"] == 7
    assert not (directory / "__pycache__").exists()


def test_a_step_called_without_context_gets_an_empty_context(start, write_plugin) -> None:
    """Found while building: ``execute(step, None)`` failed with IndexError in the child."""
    plugin = start(
        write_plugin(
            """
            class Step:
                def execute(self, step, context):
                    return {"results": context.results, "mode": context.mode}
            def init(config):
                return config
            def get_metadata(state):
                return {"name": "hostile"}
            def get_step_types(state):
                return [("s", Step())]
            """
        )
    )
    ((_, step),) = plugin.get_step_types(plugin.init({}))
    assert step.execute({}, None) == {"results": {}, "mode": "mock"}


def test_an_infinite_call_timeout_starts_and_serves(start, write_plugin) -> None:
    """``call_timeout_s: .inf`` is the longest wait ``poll`` takes, not an overflow (a
    second review found that it could not start)."""
    plugin = start(write_plugin(BEHAVING), timeout=float("inf"), start_timeout_s=float("inf"))
    drive(plugin, {})
