"""The host's side of an isolated plugin: the child process, calls, proxies, restarts.

``ProcessPlugin.start(spec)`` starts the child and quacks like ``PluginAdapter``: ``init``
returns an opaque ``StateHandle`` (the state stays in the child), ``get_step_types`` and
``get_providers`` return ``StepProxy`` and ``ProviderProxy`` objects whose calls go to the
child.  Calls are serialised per plugin (a re-entrant lock: a step that calls back into the
host may reach this same plugin again).  What comes back is untrusted data.

Failure handling: a reply the plugin raised becomes ``RemoteError`` (a ``PluginError``)
and the child carries on; a denial by the audit hook becomes ``permission_denied``; a child
that hangs past ``call_timeout_s`` (``timeout``), dies, runs out of memory, closes its
pipe or sends a bad frame (``crashed``, naming the signal or exit status) is killed and
reaped, and restarted within the ``RestartPolicy`` budget, re-initialised with the same
config before it serves again.  Plugin state is lost on a crash: the new child starts from
``init(config)``.  Past the budget the plugin is ``failed``: every call answers with that
error and ``on_failed(error)`` is called once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline_ex.errors import PluginError
from pipeline_ex.log import get_logger
from pipeline_ex.plugins.guard import LONGEST_WAIT_S
from pipeline_ex.plugins.isolation import wire
from pipeline_ex.plugins.isolation.child import ERROR, EXIT_MEMORY, OK, READY, REQUEST
from pipeline_ex.plugins.isolation.spec import IsolationSpec
from pipeline_ex.plugins.isolation.supervisor import RestartBudget

logger = get_logger(__name__)

#: Set to ``inherit`` to let children write to the host's stderr (debugging start-up).
DEBUG_STDERR = "PIPELINE_EX_ISOLATION_STDERR"
_PACKAGE_DIR = str(Path(__file__).resolve().parent)
#: Runs in ``python -I -S``: the host's ``sys.path``, then this package under a private
#: name, so that the child imports neither ``site`` nor ``pipeline_ex``.
_BOOTSTRAP = (
    "import sys\n"
    "d, c, r, l = sys.argv[1:5]\n"
    "sys.path[:] = sys.argv[5:]\n"
    "p = type(sys)('_pipeline_ex_isolation'); p.__path__ = [d]\n"
    "sys.modules[p.__name__] = p\n"
    "from _pipeline_ex_isolation.child import main\n"
    "main(int(c), int(r), int(l))\n"
)

#: Room left in the bootstrap frame for everything but the verified sources.
_BOOT_MARGIN = 64 * 1024

#: What a call's failure to answer is, and the error code of what the plugin raised.
_RAISED_CODES = {
    "init": "init_failed",
    "get_metadata": "validation_failed",
    "get_step_types": "validation_failed",
    "get_providers": "validation_failed",
    "get_schema_extensions": "validation_failed",
    "semantic_check": "validation_failed",
}


class IsolationError(PluginError):
    """An error the host side of the isolation made (``timeout``, ``crashed``,
    ``permission_denied``, ``init_failed``, ``validation_failed``, ``not_loaded``).

    Plugin code cannot raise one into the host (it runs in another process and only sends
    data), so a guard may trust its ``code`` as it trusts its own, ``timeout`` included."""

    host_raised = True


class RemoteError(IsolationError):
    """The plugin raised in its child; ``remote_type`` names what it raised and
    ``traceback`` is the child's formatted traceback."""

    host_raised = False  # its code may come from plugin code in the child

    def __init__(self, message: str, *, code: str, plugin: str, remote_type: str) -> None:
        super().__init__(message, code=code, plugin=plugin)
        self.remote_type = remote_type


class _Failure(Exception):
    """The child is broken (hang, death, bad frame); it must be killed and replaced."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class StateHandle:
    """What ``init`` returns to the host: a reference to the state that lives in the child.

    After a restart it points at the re-initialised state of the new child."""

    __slots__ = ("_ident", "plugin")

    def __init__(self, plugin: str, ident: int) -> None:
        self.plugin = plugin
        self._ident = ident

    def __repr__(self) -> str:
        return f"<state of isolated plugin {self.plugin!r}>"


class _Child:
    """One child process and the host's ends of its pipes."""

    def __init__(self, process: subprocess.Popen[bytes], channel: wire.Channel, lifeline: int):
        self.process = process
        self.channel = channel
        self.lifeline = lifeline
        self.dead = False
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """Kill and reap; the descriptors stay open (``release`` closes them)."""
        self.dead = True
        with contextlib.suppress(OSError):
            os.close(self.lifeline)
        self.lifeline = -1
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.kill()
        self.process.wait()

    def release(self) -> None:
        self.channel.close()

    def status(self, wait: float) -> str:
        """How the child ended, waiting up to ``wait`` seconds for it to end on its own."""
        try:
            code = self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.kill()
            return "closed its pipe and was killed"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        if code == EXIT_MEMORY:
            return "ran out of memory"
        return f"exited with status {code}"


def _kill_at_exit(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(OSError):
            process.kill()
        process.wait()


def _manifest_module(spec: IsolationSpec) -> tuple[str, str, str]:
    directory = Path(str(spec.directory)).resolve()
    manifest = directory / "plugin.yaml"
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise IsolationError(
            f"plugin {spec.plugin!r}: cannot read {manifest}: {exc}",
            code="validation_failed",
            plugin=spec.plugin,
        ) from None
    module = data.get("module") if isinstance(data, dict) else None
    if not isinstance(module, str) or not module.partition(":")[0].isidentifier():
        raise IsolationError(
            f"plugin {spec.plugin!r}: {manifest} needs module: stem[:Attr], got {module!r}",
            code="validation_failed",
            plugin=spec.plugin,
        )
    stem, _, attr = module.partition(":")
    return str(directory), stem, attr


class ProcessPlugin:
    """An isolated plugin (tier ``process`` or ``sandbox``), with the adapter's calls."""

    def __init__(
        self, spec: IsolationSpec, on_failed: Callable[[PluginError], None] | None = None
    ) -> None:
        self.spec = spec
        self.name = spec.plugin
        self.kind = spec.tier
        self.on_failed = on_failed
        self.status = "starting"
        self.layers: tuple[str, ...] = ()
        self.last_error: PluginError | None = None
        self.failed_error: PluginError | None = None
        self.budget = RestartBudget(spec.restart)
        self.health_check: Callable[[Any], Any] | None = None
        # ``.inf`` (no limit) as the longest wait poll() takes: ~11.6 days.
        self._call_timeout = min(float(spec.limits.call_timeout_s), LONGEST_WAIT_S)
        self._lock = threading.RLock()
        self._child: _Child | None = None
        self._next_id = 0
        self._contexts: dict[int, Any] = {}
        self._state: StateHandle | None = None
        self._config: Any = None
        self._replay: list[str] = []
        self._notify: PluginError | None = None
        self._boot: dict[str, Any] = {
            "plugin": spec.plugin,
            "tier": spec.tier,
            "grants": spec.grants_wire(),
            "limits": spec.limits.as_wire(),
            "degrade": spec.sandbox_degrade,
            "max_frame": spec.max_frame,
        }
        if spec.directory is not None:
            directory, stem, attr = _manifest_module(spec)
            self._boot.update(directory=directory, stem=stem, attr=attr)
        else:
            self._boot["reference"] = spec.reference
        if spec.sources:
            # The child's first read takes frames up to the default maximum.
            size = sum(sources.size() for sources in spec.sources)
            if size > wire.MAX_FRAME - _BOOT_MARGIN:
                raise IsolationError(
                    f"plugin {spec.plugin!r}: its verified sources ({size} bytes) do not fit "
                    f"the child's bootstrap frame ({wire.MAX_FRAME} bytes)",
                    code="validation_failed",
                    plugin=spec.plugin,
                )
            self._boot["sources"] = [sources.as_wire() for sources in spec.sources]

    # -- life cycle ------------------------------------------------------------------------
    @classmethod
    def start(
        cls, spec: IsolationSpec, *, on_failed: Callable[[PluginError], None] | None = None
    ) -> ProcessPlugin:
        """Start the child and import the plugin there; ``PluginError`` if it cannot."""
        plugin = cls(spec, on_failed)
        plugin._child = plugin._spawn()
        plugin.status = "running"
        return plugin

    @property
    def pid(self) -> int | None:
        child = self._child
        return None if child is None or child.dead else child.pid

    @property
    def restarts(self) -> int:
        return self.budget.total

    def close(self) -> None:
        """Kill and reap the child (idempotent); later calls fail with ``not_loaded``."""
        if self.status != "failed":
            self.status = "closed"
        child = self._child
        if child is not None:
            child.kill()
            if self._lock.acquire(blocking=False):
                try:
                    child.release()
                    self._child = None
                finally:
                    self._lock.release()

    def __enter__(self) -> ProcessPlugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{self.kind} plugin {self.name!r} {self.status} pid={self.pid}>"

    def _spawn(self) -> _Child:
        spec = self.spec
        command_r, command_w = os.pipe()
        reply_r, reply_w = os.pipe()
        life_r, life_w = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-B",
                    "-X",
                    "utf8",
                    "-c",
                    _BOOTSTRAP,
                    _PACKAGE_DIR,
                    str(command_r),
                    str(reply_w),
                    str(life_r),
                    *[p for p in sys.path if p],
                ],
                pass_fds=(command_r, reply_w, life_r),
                close_fds=True,
                env=spec.child_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None if os.environ.get(DEBUG_STDERR) == "inherit" else subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (command_r, command_w, reply_r, reply_w, life_r, life_w):
                os.close(fd)
            raise IsolationError(
                f"plugin {self.name!r}: cannot start its process: {exc}",
                code="crashed",
                plugin=self.name,
            ) from exc
        finally:
            for fd in (command_r, reply_w, life_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
        weakref.finalize(self, _kill_at_exit, process)
        child = _Child(process, wire.Channel(reply_r, command_w, max_frame=spec.max_frame), life_w)
        try:
            child.channel.send(self._boot)
            reply = child.channel.receive(
                time.monotonic() + min(spec.start_timeout, LONGEST_WAIT_S)
            )
        except wire.WireTimeout:
            child.kill()
            child.release()
            raise IsolationError(
                f"plugin {self.name!r}: its process did not start within "
                f"{spec.start_timeout} s (import included); it was killed",
                code="timeout",
                plugin=self.name,
            ) from None
        except wire.WireError as exc:
            how = child.status(1.0) if isinstance(exc, wire.PeerClosed) else "sent a bad frame"
            child.kill()
            child.release()
            raise IsolationError(
                f"plugin {self.name!r}: its process {how} while starting ({exc})",
                code="crashed",
                plugin=self.name,
            ) from None
        if not (isinstance(reply, list) and len(reply) == 3 and reply[0] in (READY, ERROR)):
            child.kill()
            child.release()
            raise IsolationError(
                f"plugin {self.name!r}: its process answered the bootstrap with {reply!r:.200}",
                code="crashed",
                plugin=self.name,
            )
        if reply[0] == ERROR:
            info = reply[2] if isinstance(reply[2], dict) else {}
            ended = child.status(1.0) if info.get("kind") == "memory" else ""
            child.kill()
            child.release()
            raise self._start_error(info, ended)
        info = reply[2] if isinstance(reply[2], dict) else {}
        child.info = info
        self.layers = tuple(str(x) for x in info.get("layers") or ())
        functions = info.get("functions") or []
        self.health_check = self._health_check if "health_check" in functions else None
        return child

    def _start_error(self, info: Mapping[str, Any], ended: str) -> PluginError:
        kind = info.get("kind")
        text = f"{info.get('type', 'Error')}: {info.get('message', '')}"
        if kind == "denied":
            return self._denied(info, "import")
        if kind == "memory":
            return IsolationError(
                f"plugin {self.name!r}: its process ran out of memory while importing the "
                f"plugin (memory_mb={self.spec.limits.memory_mb}){'; ' + ended if ended else ''}",
                code="crashed",
                plugin=self.name,
            )
        if kind == "sandbox":
            return IsolationError(
                f"plugin {self.name!r}: cannot sandbox: {info.get('message', '')}",
                code="validation_failed",
                plugin=self.name,
            )
        what = "does not follow the plugin contract" if kind == "contract" else "cannot import"
        error = RemoteError(
            f"plugin {self.name!r}: {what}: {text}",
            code="validation_failed",
            plugin=self.name,
            remote_type=str(info.get("type", "Error")),
        )
        error.traceback = info.get("traceback") if isinstance(info.get("traceback"), str) else None
        return error

    def _denied(self, info: Mapping[str, Any], what: str) -> PluginError:
        actions = [str(a) for a in info.get("actions") or ()] or ["an action"]
        return IsolationError(
            f"plugin {self.name!r}: {what}: permission denied: {'; '.join(actions)}",
            code="permission_denied",
            plugin=self.name,
        )

    # -- the contract ----------------------------------------------------------------------
    def init(self, config: Any) -> StateHandle:
        ident = self._call("init", [wire.to_wire(config)], "init")
        state = StateHandle(self.name, int(ident))
        with self._lock:
            self._state, self._config, self._replay = state, config, []
        return state

    def _ident(self, state: Any) -> int | None:
        if state is None:
            return None
        if not isinstance(state, StateHandle) or state is not self._state:
            raise IsolationError(
                f"plugin {self.name!r}: not a state of this plugin: {state!r}",
                code="validation_failed",
                plugin=self.name,
            )
        return state._ident

    def get_metadata(self, state: Any) -> Any:
        return self._call("get_metadata", [self._ident(state)], "get_metadata")

    def get_step_types(self, state: Any) -> list[tuple[str, StepProxy]]:
        entries = self._call("get_step_types", [self._ident(state)], "get_step_types")
        self._remember("get_step_types")
        return [(str(n), StepProxy(self, str(n), info)) for n, info in self._pairs(entries)]

    def get_providers(self, state: Any) -> list[tuple[str, ProviderProxy, list[str]]]:
        entries = self._call("get_providers", [self._ident(state)], "get_providers")
        self._remember("get_providers")
        out = []
        for name, caps in self._pairs(entries):
            if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
                raise self._bad_reply("get_providers", caps)
            out.append((str(name), ProviderProxy(self, str(name)), list(caps)))
        return out

    def get_schema_extensions(self, state: Any) -> list[tuple[str, dict[str, Any]]]:
        entries = self._call("get_schema_extensions", [self._ident(state)], "get_schema_extensions")
        out = []
        for name, fragment in self._pairs(entries):
            if not isinstance(fragment, dict):
                raise self._bad_reply("get_schema_extensions", fragment)
            out.append((str(name), fragment))
        return out

    def terminate(self, state: Any) -> Any:
        ident = self._ident(state)
        try:
            return self._call("terminate", [ident], "terminate")
        finally:
            with self._lock:
                if state is self._state:
                    self._state = None

    def _health_check(self, state: Any) -> Any:
        return self._call("health_check", [self._ident(state)], "health_check")

    def _remember(self, op: str) -> None:
        with self._lock:
            if op not in self._replay:
                self._replay.append(op)

    def _pairs(self, entries: Any) -> list[tuple[Any, Any]]:
        if not isinstance(entries, list) or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) for e in entries
        ):
            raise self._bad_reply("a component list", entries)
        return [(e[0], e[1]) for e in entries]

    def _bad_reply(self, what: str, value: Any) -> PluginError:
        return IsolationError(
            f"plugin {self.name!r}: malformed answer to {what}: {value!r:.200}",
            code="validation_failed",
            plugin=self.name,
        )

    # -- calls -----------------------------------------------------------------------------
    def _call(self, op: str, args: list[Any], what: str, context: Any = None) -> Any:
        """One call into the child, on the calling thread: ``args`` must already be wire
        data (``wire.to_wire`` where they come from elsewhere)."""
        try:
            with self._lock:
                child = self._child
                if self.status == "failed":
                    assert self.failed_error is not None
                    raise self.failed_error
                if self.status == "closed" or child is None:
                    raise IsolationError(
                        f"plugin {self.name!r} is closed", code="not_loaded", plugin=self.name
                    )
                try:
                    return self._exchange(child, op, args, what, context)
                except _Failure as failure:
                    raise self._fail(child, failure, what) from None
                except (PluginError, wire.WireError):
                    raise
                except BaseException:
                    # interrupted mid-call (the user's Ctrl-C): the child's answer would
                    # arrive out of turn, so this child cannot be trusted to be in step
                    self._fail(child, _Failure("crashed", "the call was interrupted"), what)
                    raise
        finally:
            if self._notify is not None:
                notify, self._notify = self._notify, None
                if self.on_failed is not None:
                    self.on_failed(notify)

    def _exchange(self, child: _Child, op: str, args: list[Any], what: str, context: Any) -> Any:
        """Send the request, then read until its reply, serving the child's callbacks (a
        step's ``context.providers``, ``build_prompt``, ``run_steps``) on this thread in
        between.  The deadline is the read's ``poll`` timeout; time spent serving a
        callback does not count against the child."""
        self._next_id = ident = self._next_id + 1
        context_id = None
        if context is not None:
            context_id = ident
            self._contexts[ident] = context
            args = [*args, wire.to_wire(_context_data(ident, context))]
        channel = child.channel
        # taken before the send, so that the host blocks in poll right after its write
        deadline = time.monotonic() + self._call_timeout
        try:
            try:
                channel.send([REQUEST, ident, op, args])
            except wire.PeerClosed as exc:
                raise _Failure("crashed", str(exc)) from None
            except wire.WireError as exc:
                raise IsolationError(
                    f"plugin {self.name!r}: {what}: cannot send the call: {exc}",
                    code="validation_failed",
                    plugin=self.name,
                ) from None
            while True:
                try:
                    message = channel.receive(deadline)
                except wire.WireError as exc:
                    raise self._broken(exc) from None
                if (
                    type(message) is list
                    and len(message) == 3
                    and message[0] == OK
                    and message[1] == ident
                ):
                    return message[2]
                _check_frame(message)
                if message[0] == REQUEST:
                    started = time.monotonic()
                    reply = self._serve(message)
                    deadline += time.monotonic() - started
                    if child.dead or child is not self._child:
                        raise _Failure("crashed", "its process was replaced during a nested call")
                    try:
                        channel.send(reply)
                    except wire.WireError as exc:
                        raise _Failure("crashed", str(exc)) from None
                    continue
                if message[1] != ident:
                    raise _Failure("crashed", f"sent a reply to call {message[1]!r} out of turn")
                if message[0] == OK:
                    return message[2]
                raise self._error_reply(message[2], op, what)
        finally:
            if context_id is not None:
                self._contexts.pop(context_id, None)

    def _broken(self, exc: wire.WireError) -> _Failure:
        if isinstance(exc, wire.WireTimeout):
            return _Failure("timeout", f"did not answer within {self.spec.limits.call_timeout_s} s")
        if isinstance(exc, wire.PeerClosed):
            return _Failure("crashed", "closed")
        return _Failure("crashed", f"sent a bad frame ({exc})")

    def _error_reply(self, info: Any, op: str, what: str) -> Exception:
        if not isinstance(info, dict):
            return _Failure("crashed", f"sent an error that is not a mapping: {info!r:.200}")
        kind = info.get("kind")
        if kind == "memory":
            return _Failure("memory", "ran out of memory")
        if kind == "denied":
            return self._denied(info, what)
        code = "validation_failed" if kind == "contract" else _RAISED_CODES.get(op, "crashed")
        remote_type = str(info.get("type", "Error"))
        error = RemoteError(
            f"plugin {self.name!r}: {what} raised {remote_type}: {info.get('message', '')}",
            code=code,
            plugin=self.name,
            remote_type=remote_type,
        )
        trace = info.get("traceback")
        error.traceback = trace if isinstance(trace, str) else None
        return error

    def _fail(self, child: _Child, failure: _Failure, what: str) -> PluginError:
        """Kill and reap ``child``; restart within the budget or mark the plugin failed."""
        if failure.code == "timeout" or failure.detail != "closed":
            child.kill()
            ended = ""
        else:
            ended = child.status(1.0)
            child.kill()
        if failure.code == "memory" or ended == "ran out of memory":
            reason = f"ran out of memory (memory_mb={self.spec.limits.memory_mb})"
            if not ended:
                ended = child.status(0)
        elif failure.detail == "closed":
            reason = ended
            ended = ""
        else:
            reason = failure.detail
        code = "timeout" if failure.code == "timeout" else "crashed"
        message = f"plugin {self.name!r}: {what}: its process (pid {child.pid}) {reason}"
        if ended:
            message += f" and {ended}"
        if code == "timeout":
            message += "; it was killed"
        current = child is self._child
        if current:
            child.release()
            self._child = None
        if not current or self.status in ("closed", "failed"):
            return IsolationError(message, code=code, plugin=self.name)
        error = IsolationError(message, code=code, plugin=self.name)
        self.last_error = error
        self._restart(error)
        if self.status == "failed":
            error = IsolationError(
                message + "; restart budget used up, the plugin is failed",
                code=code,
                plugin=self.name,
            )
        else:
            error = IsolationError(
                message + f"; restarted ({self.budget.recent()} of "
                f"{self.spec.restart.max_restarts} in {self.spec.restart.window_s:g} s)",
                code=code,
                plugin=self.name,
            )
        self.last_error = error
        return error

    def _restart(self, cause: PluginError) -> None:
        """Start a new child and bring it to where the old one was (init, components)."""
        last = cause
        while self.budget.take():
            self.status = "restarting"
            try:
                self._child = self._spawn()
                self.status = "running"
                self._replay_state()
                logger.warning(
                    "isolated plugin %s restarted after: %s",
                    self.name,
                    cause.message,
                    extra={"plugin": self.name},
                )
                return
            except PluginError as exc:
                last = exc
                if self._child is not None:
                    self._child.kill()
                    self._child.release()
                    self._child = None
        self.status = "failed"
        policy = self.spec.restart
        self.failed_error = IsolationError(
            f"plugin {self.name!r} failed: {policy.max_restarts} restart(s) within "
            f"{policy.window_s:g} s used up; last error: {last.message}",
            code="crashed",
            plugin=self.name,
        )
        self._notify = self.failed_error

    def _replay_state(self) -> None:
        state = self._state
        child = self._child
        if state is None or child is None:
            return
        try:
            state._ident = int(
                self._exchange(child, "init", [wire.to_wire(self._config)], "init (restart)", None)
            )
            for op in self._replay:
                self._exchange(child, op, [state._ident], f"{op} (restart)", None)
        except _Failure as failure:
            raise IsolationError(
                f"plugin {self.name!r}: re-initialising after a restart failed: {failure.detail}",
                code=failure.code if failure.code == "timeout" else "crashed",
                plugin=self.name,
            ) from None

    # -- the host's side of the context callbacks ----------------------------------------
    def _serve(self, message: list[Any]) -> list[Any]:
        ident, op, args = message[1], message[2], message[3]
        try:
            handler = _CALLBACKS.get(op) if isinstance(op, str) else None
            if handler is None or not args:
                raise ValueError(f"unknown callback {op!r}")
            context = self._contexts.get(args[0]) if isinstance(args[0], int) else None
            if context is None:
                raise LookupError(f"{op}: the call this context belonged to has ended")
            return [OK, ident, wire.to_wire(handler(context, *args[1:]))]
        except Exception as exc:
            return [ERROR, ident, {"type": type(exc).__name__, "message": str(exc)}]


def _check_frame(message: Any) -> None:
    """Refuse what is neither a request ``[REQUEST, id, op, args]`` nor a reply
    ``[OK|ERROR, id, value]`` (a reply's id is compared by the caller)."""
    if not isinstance(message, list) or not message or not isinstance(message[0], int):
        raise _Failure("crashed", f"sent a message that is not a frame: {message!r:.200}")
    if message[0] == REQUEST and len(message) == 4 and isinstance(message[3], list):
        return
    if message[0] in (OK, ERROR) and len(message) == 3:
        return
    raise _Failure("crashed", f"sent a message that is not a frame: {message!r:.200}")


def _context_data(ident: int, context: Any) -> dict[str, Any]:
    """What a step in the child sees of the host's context, as data (see ``ContextProxy``)."""
    return {
        "id": ident,
        "results": getattr(context, "results", {}),
        "variables": getattr(context, "variables", {}),
        "inputs": getattr(context, "inputs", {}),
        "workflow": getattr(context, "workflow", {}),
        "loop": getattr(context, "loop", {}),
        "global_vars": getattr(context, "global_vars", {}),
        "mode": getattr(context, "mode", "mock"),
    }


def _provider(context: Any, name: Any, capabilities: Any) -> str:
    providers = context.providers
    if name is not None:
        providers.get(str(name))  # raises when unknown
        return str(name)
    if hasattr(providers, "select_name"):
        return str(providers.select_name([str(c) for c in capabilities]))
    raise LookupError("this context's providers cannot select by capability")


_CALLBACKS: dict[str, Callable[..., Any]] = {
    "ctx.provider": _provider,
    "ctx.has_provider": lambda c, name: name in c.providers,
    "ctx.query": lambda c, name, prompt, options: c.providers.get(str(name)).query(
        str(prompt), dict(options) if isinstance(options, dict) else {}
    ),
    "ctx.build_prompt": lambda c, parts: c.build_prompt(parts),
    "ctx.run_steps": lambda c, steps, path="": c.run_steps(steps, path),
    "ctx.check_condition": lambda c, condition: c.check_condition(condition),
    "ctx.set_variable": lambda c, name, value, scope="global": c.set_variable(name, value, scope),
    "ctx.provider_name": lambda c, family: c.provider_name(family),
}


class StepProxy:
    """A step type living in the child: ``execute`` (and the hooks the step has) are calls.

    ``raw_keys`` and ``owns_condition`` were read in the child when the plugin offered the
    step; ``preflight`` and ``semantic_check`` are ``None`` when the step lacks them."""

    def __init__(self, plugin: ProcessPlugin, name: str, info: Any) -> None:
        if not isinstance(info, dict):
            raise plugin._bad_reply(f"step type {name!r}", info)
        raw = info.get("raw_keys") or []
        if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
            raise plugin._bad_reply(f"step type {name!r} raw_keys", raw)
        self.plugin = plugin
        self.name = name
        self.raw_keys = frozenset(raw)
        self.owns_condition = info.get("owns_condition") is True
        self._execute = f"step type {name!r} execute"
        self.description = str(info.get("description") or "")
        self.preflight: Callable[[Any, Any], Any] | None = (
            self._preflight if info.get("preflight") is True else None
        )
        self.semantic_check: Callable[[Any], Any] | None = (
            self._semantic_check if info.get("semantic_check") is True else None
        )

    def execute(self, step: Any, context: Any) -> Any:
        return self.plugin._call("execute", [self.name, wire.to_wire(step)], self._execute, context)

    def _preflight(self, step: Any, context: Any) -> Any:
        return self.plugin._call(
            "preflight",
            [self.name, wire.to_wire(step)],
            f"step type {self.name!r} preflight",
            context,
        )

    def _semantic_check(self, step: Any) -> list[tuple[Any, Any]]:
        found = self.plugin._call(
            "semantic_check",
            [self.name, wire.to_wire(step)],
            f"step type {self.name!r} semantic_check",
        )
        if not isinstance(found, list) or not all(
            isinstance(p, list) and len(p) == 2 for p in found
        ):
            raise self.plugin._bad_reply("semantic_check", found)
        return [(p[0], p[1]) for p in found]

    def __repr__(self) -> str:
        return f"<isolated step type {self.name!r} of {self.plugin.name!r}>"


class ProviderProxy:
    """A provider living in the child: ``query`` is a call."""

    def __init__(self, plugin: ProcessPlugin, name: str) -> None:
        self.plugin = plugin
        self.name = name
        self._what = f"provider {name!r} query"

    def query(self, prompt: str, options: Mapping[str, Any] | None = None) -> Any:
        return self.plugin._call(
            "query",
            [
                self.name,
                prompt if type(prompt) is str else wire.to_wire(prompt),
                wire.to_wire(dict(options)) if options else {},
            ],
            self._what,
        )

    def __repr__(self) -> str:
        return f"<isolated provider {self.name!r} of {self.plugin.name!r}>"
