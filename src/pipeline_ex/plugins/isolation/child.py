"""The child process of an isolated plugin: bootstrap, then serve calls until told to stop.

The host starts ``python -I -S -c BOOTSTRAP`` (see ``host.py``), which sets ``sys.path``
to the host's and imports this package under a private top-level name, so the child never
imports ``pipeline_ex`` itself (``pipeline_ex/__init__`` pulls in the whole host and costs
~150 ms).  Then, in this order, before any plugin code runs:

1. read the bootstrap frame (plugin reference, grants, limits, tier);
2. apply the resource limits (``limits.py``);
3. for ``sandbox``, put Landlock and seccomp in force (``sandbox.py``);
4. start the lifeline thread: it blocks reading a pipe whose only writer is the host and
   ends the child when that read returns, i.e. when the host is gone (however it died);
5. install the audit hook (``audit.py``);
6. import the plugin and answer "ready" with the layers in force.

The plugin's state and component objects live here; the host holds handles.  A call is a
``[REQUEST, id, op, args]`` frame answered by ``[OK, id, value]`` or ``[ERROR, id, info]``;
while a step runs, the child may itself send requests (the context's callbacks), and the
host may call back in again while the child waits, so both sides serve requests while
waiting for a reply.
"""

from __future__ import annotations

import _thread
import os
import sys
from collections.abc import Mapping

from . import audit, limits, wire

#: The child imports this module: ``typing`` (~5 ms at start-up) is for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

REQUEST, OK, ERROR, READY = 0, 1, 2, 3
#: Exit status of a child that ran out of memory (after reporting it when it could).
EXIT_MEMORY = 70
#: Most components of one kind a plugin may offer (like the host's loader).
MAX_COMPONENTS = 100_000

_CONTRACT = (
    "init",
    "get_metadata",
    "terminate",
    "get_step_types",
    "get_providers",
    "get_schema_extensions",
    "health_check",
)


class HostError(Exception):
    """A call back to the host (a provider, ``build_prompt``, ``run_steps``) failed there."""


class ContractError(Exception):
    """The plugin's answer does not have the shape the contract asks for."""


class _Link:
    """The child's end of the channel: requests out (callbacks), requests in (calls)."""

    def __init__(self, channel: wire.Channel, serve: Callable[[list[Any]], None]) -> None:
        self.channel = channel
        self.serve = serve
        self._next = 0

    def call(self, op: str, args: list[Any]) -> Any:
        self._next += 1
        ident = -self._next  # negative ids: the child's requests
        self.channel.send([REQUEST, ident, op, wire.to_wire(args)])
        while True:
            message = self.channel.receive()
            kind = message[0]
            if kind == REQUEST:
                self.serve(message)
                continue
            if message[1] != ident:
                raise wire.WireError(f"reply to {message[1]!r} while waiting for {ident}")
            if kind == OK:
                return message[2]
            info = message[2] if isinstance(message[2], dict) else {}
            raise HostError(f"{info.get('type', 'Error')}: {info.get('message', '')}")


class RemoteProvider:
    """A host provider, reached through the call that is running."""

    def __init__(self, link: _Link, context: int, name: str) -> None:
        self._link, self._context, self.name = link, context, name

    def query(self, prompt: str, options: Mapping[str, Any] | None = None) -> Any:
        return self._link.call("ctx.query", [self._context, self.name, prompt, options or {}])

    def __repr__(self) -> str:
        return f"<host provider {self.name!r}>"


class ProvidersProxy:
    """``context.providers``: look-ups and capability selection answered by the host."""

    def __init__(self, link: _Link, context: int) -> None:
        self._link, self._context = link, context

    def get(self, name: str) -> RemoteProvider:
        found = self._link.call("ctx.provider", [self._context, name, None])
        return RemoteProvider(self._link, self._context, str(found))

    __getitem__ = get

    def select(self, capabilities: Any) -> RemoteProvider:
        found = self._link.call("ctx.provider", [self._context, None, list(capabilities)])
        return RemoteProvider(self._link, self._context, str(found))

    def __contains__(self, name: object) -> bool:
        return bool(self._link.call("ctx.has_provider", [self._context, name]))


class ContextProxy:
    """What a step receives as ``context`` in the child.

    ``results``, ``variables``, ``inputs``, ``workflow``, ``loop``, ``global_vars`` and
    ``mode`` are copies sent with the call (changing them changes nothing in the host; use
    ``set_variable``); ``providers``, ``build_prompt``, ``run_steps``, ``check_condition``
    and ``set_variable`` are calls back to the host, valid while the call runs.
    """

    def __init__(self, link: _Link, data: Mapping[str, Any]) -> None:
        self._link = link
        self._id = int(data.get("id", 0))
        self.results: dict[str, Any] = dict(data.get("results") or {})
        self.variables: dict[str, Any] = dict(data.get("variables") or {})
        self.inputs: dict[str, Any] = dict(data.get("inputs") or {})
        self.workflow: dict[str, Any] = dict(data.get("workflow") or {})
        self.loop: dict[str, Any] = dict(data.get("loop") or {})
        self.global_vars: dict[str, Any] = dict(data.get("global_vars") or {})
        self.mode: str = str(data.get("mode") or "mock")
        self.providers = ProvidersProxy(link, self._id)

    def _call(self, op: str, *args: Any) -> Any:
        return self._link.call(op, [self._id, *args])

    def build_prompt(self, parts: list[Any]) -> Any:
        return self._call("ctx.build_prompt", parts)

    def run_steps(self, steps: list[Any], path: str = "") -> Any:
        return self._call("ctx.run_steps", steps, path)

    def check_condition(self, condition: Any) -> bool:
        return bool(self._call("ctx.check_condition", condition))

    def set_variable(self, name: str, value: Any, scope: str = "global") -> None:
        self._call("ctx.set_variable", name, value, scope)
        self.variables[name] = value

    def provider_name(self, family: str) -> str:
        return str(self._call("ctx.provider_name", family))

    def provider_for(self, family: str) -> RemoteProvider:
        return RemoteProvider(self._link, self._id, self.provider_name(family))


def _import_reference(reference: str) -> Any:
    """``pkg.mod:Attr``, ``pkg.mod.Attr`` or ``pkg.mod`` -> the object (as the loader)."""
    import importlib

    module_name, _, attr = reference.partition(":")
    try:
        module: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if attr or "." not in module_name or exc.name != module_name:
            raise
        module_name, _, attr = module_name.rpartition(".")
        module = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        module = getattr(module, part)
    return module


def _import_directory(directory: str, stem: str, attr: str, *, verified: bool) -> Any:
    """``stem`` from ``directory`` as ``_pipeline_ex_plugin.stem`` (like the loader's
    private package, without the host).  ``verified``: the modules come from the verified
    sources only (installed by ``main``), nothing under the package is found on disk."""
    import importlib

    package = type(sys)("_pipeline_ex_plugin")
    package.__path__ = [] if verified else [directory]
    sys.modules["_pipeline_ex_plugin"] = package
    target: Any = importlib.import_module(f"_pipeline_ex_plugin.{stem}")
    for part in attr.split(".") if attr else ():
        target = getattr(target, part)
    return target


def _contract(target: Any) -> dict[str, Callable[[Any], Any]]:
    obj = target() if isinstance(target, type) else target
    functions = {}
    for name in _CONTRACT:
        fn = getattr(obj, name, None)
        if fn is not None:
            if not callable(fn):
                raise ContractError(f"{name} is not callable")
            functions[name] = fn
    for name in ("init", "get_metadata"):
        if name not in functions:
            raise ContractError(f"the plugin has no {name}()")
    return functions


def _entries(value: Any, width: int, what: str) -> list[tuple[Any, ...]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = list(value.items())
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise ContractError(f"get_{what} must return a list, got {type(value).__name__}")
    out = []
    for index, item in enumerate(value):
        if index >= MAX_COMPONENTS:
            raise ContractError(f"get_{what} offered more than {MAX_COMPONENTS} entries")
        if not isinstance(item, tuple | list) or len(item) != width:
            raise ContractError(f"each entry of get_{what} must be a {width}-tuple, got {item!r}")
        if not isinstance(item[0], str) or not item[0]:
            raise ContractError(f"{what} name must be a non-empty string, got {item[0]!r}")
        out.append(tuple(item))
    return out


def _instantiate(component: Any) -> Any:
    return component() if isinstance(component, type) else component


def _describe(obj: Any) -> str:
    doc = getattr(type(obj), "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Child:
    """The plugin, its state and its components, and the request dispatcher."""

    def __init__(self, channel: wire.Channel, functions: dict[str, Callable[[Any], Any]]) -> None:
        self.link = _Link(channel, self.serve)
        self.channel = channel
        self.functions = functions
        self.states: dict[int, Any] = {}
        self.steps: dict[str, Any] = {}
        self.providers: dict[str, Any] = {}
        self.denials: list[str] = []
        self._next_state = 0
        self.ops: dict[str, Callable[[list[Any]], Any]] = {
            "init": self._init,
            "get_metadata": lambda a: self.functions["get_metadata"](self._state(a[0])),
            "get_step_types": self._step_types,
            "get_providers": self._providers,
            "get_schema_extensions": self._extensions,
            "terminate": lambda a: self._optional("terminate", a[0]),
            "health_check": lambda a: self._optional("health_check", a[0]),
            "execute": lambda a: self.steps[a[0]].execute(a[1], self._context(a)),
            "preflight": lambda a: self.steps[a[0]].preflight(a[1], self._context(a)),
            "semantic_check": lambda a: [list(p) for p in self.steps[a[0]].semantic_check(a[1])],
            "query": lambda a: self.providers[a[0]].query(a[1], a[2]),
            "ping": lambda a: "pong",
        }

    def _context(self, args: list[Any]) -> ContextProxy:
        data = args[2] if len(args) > 2 and isinstance(args[2], dict) else {}
        return ContextProxy(self.link, data)

    def _state(self, handle: Any) -> Any:
        return None if handle is None else self.states[handle]

    def _optional(self, name: str, handle: Any) -> Any:
        fn = self.functions.get(name)
        return None if fn is None else fn(self._state(handle))

    def _init(self, args: list[Any]) -> int:
        state = self.functions["init"](args[0])
        self._next_state += 1
        self.states[self._next_state] = state
        return self._next_state

    def _step_types(self, args: list[Any]) -> list[Any]:
        fn = self.functions.get("get_step_types")
        out = []
        for name, component in _entries(fn(self._state(args[0])) if fn else None, 2, "step_types"):
            step = _instantiate(component)
            if not callable(getattr(step, "execute", None)):
                raise ContractError(f"step type {name!r} has no execute(step, context)")
            raw = getattr(step, "raw_keys", ())
            if (
                isinstance(raw, str)
                or not isinstance(raw, list | tuple | set | frozenset)
                or not all(isinstance(k, str) for k in raw)
            ):
                raise ContractError(f"step type {name!r}: raw_keys must be strings, got {raw!r}")
            owns = getattr(step, "owns_condition", False)
            if not isinstance(owns, bool):
                raise ContractError(f"step type {name!r}: owns_condition must be a bool")
            self.steps[name] = step
            info = {
                "raw_keys": sorted(raw),
                "owns_condition": owns,
                "preflight": callable(getattr(step, "preflight", None)),
                "semantic_check": callable(getattr(step, "semantic_check", None)),
                "description": _describe(step),
            }
            out.append([name, info])
        return out

    def _providers(self, args: list[Any]) -> list[Any]:
        fn = self.functions.get("get_providers")
        out = []
        for name, component, caps in _entries(
            fn(self._state(args[0])) if fn else None, 3, "providers"
        ):
            provider = _instantiate(component)
            if not callable(getattr(provider, "query", None)):
                raise ContractError(f"provider {name!r} has no query(prompt, options)")
            if isinstance(caps, str) or not all(isinstance(c, str) for c in caps):
                raise ContractError(f"provider {name!r}: capabilities must be strings")
            self.providers[name] = provider
            out.append([name, list(caps)])
        return out

    def _extensions(self, args: list[Any]) -> list[Any]:
        fn = self.functions.get("get_schema_extensions")
        out = []
        for name, fragment in _entries(
            fn(self._state(args[0])) if fn else None, 2, "schema_extensions"
        ):
            if not isinstance(fragment, Mapping):
                raise ContractError(f"schema extension {name!r} must be a mapping")
            out.append([name, fragment])
        return out

    def serve(self, message: list[Any]) -> None:
        """Answer one request (possibly while waiting for a reply to our own)."""
        ident, op, args = message[1], message[2], message[3]
        mark = len(self.denials)
        handler = self.ops.get(op) if isinstance(op, str) else None
        reply: list[Any]
        try:
            if handler is None or not isinstance(args, list):
                raise ContractError(f"unknown request {op!r}")
            value = handler(args)
            reply = [OK, ident, wire.to_wire(value)]
        except MemoryError:
            self._out_of_memory(ident)
        except wire.WireError:
            raise
        except BaseException as exc:
            reply = [ERROR, ident, _describe_error(exc)]
        if len(self.denials) > mark:
            reply = [ERROR, ident, {"kind": "denied", "actions": self.denials[mark:]}]
        try:
            self.channel.send(reply)
        except wire.WireError as exc:
            if isinstance(exc, wire.PeerClosed):
                raise
            self.channel.send([ERROR, ident, {"kind": "raised", **_error_text(exc)}])

    def _out_of_memory(self, ident: int) -> None:
        self.states.clear()
        self.steps.clear()
        self.providers.clear()
        try:
            self.channel.send([ERROR, ident, {"kind": "memory"}])
        finally:
            os._exit(EXIT_MEMORY)

    def run(self) -> None:
        receive, serve = self.channel.receive, self.serve
        while True:
            message = receive()
            if type(message) is not list or len(message) != 4 or message[0] != REQUEST:
                raise wire.WireError(f"not a request: {message!r:.200}")
            serve(message)


def _error_text(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)}


def _describe_error(exc: BaseException) -> dict[str, Any]:
    import traceback

    kind = "contract" if isinstance(exc, ContractError) else "raised"
    text = "".join(traceback.format_exception(exc))
    return {"kind": kind, **_error_text(exc), "traceback": text[-20_000:]}


def _watch_lifeline(fd: int) -> None:
    """Block until the host is gone (the read returns), then end this process."""
    try:
        os.read(fd, 1)
    finally:
        os._exit(0)


def main(command_fd: int, reply_fd: int, lifeline_fd: int) -> None:
    channel = wire.Channel(command_fd, reply_fd)
    boot = channel.receive()
    channel.max_frame = int(boot.get("max_frame") or wire.MAX_FRAME)
    denials: list[str] = []
    try:
        limits.apply(boot.get("limits") or {})
        layers: list[str] = []
        grants = [list(g) for g in boot.get("grants") or ()]
        if boot.get("tier") == "sandbox":
            from . import sandbox

            try:
                layers = sandbox.apply(
                    grants,
                    read_roots=[boot["directory"]] if boot.get("directory") else [],
                    degrade=bool(boot.get("degrade")),
                )
            except sandbox.SandboxUnavailable as exc:
                channel.send([ERROR, 0, {"kind": "sandbox", **_error_text(exc)}])
                return
        _thread.stack_size(256 * 1024)
        _thread.start_new_thread(_watch_lifeline, (lifeline_fd,))
        _thread.stack_size(0)
        audit.install(grants, denials.append)
        try:
            sources = boot.get("sources") or []
            if sources:
                from .verified_sources import VerifiedSources

                for served in sources:
                    VerifiedSources.from_wire(served).install()
            if boot.get("directory"):
                target = _import_directory(
                    boot["directory"], boot["stem"], boot.get("attr", ""), verified=bool(sources)
                )
            else:
                target = _import_reference(boot["reference"])
            functions = _contract(target)
        except MemoryError:
            channel.send([ERROR, 0, {"kind": "memory"}])
            os._exit(EXIT_MEMORY)
        except BaseException as exc:
            info = _describe_error(exc)
            info["kind"] = (
                "denied" if denials else ("contract" if info["kind"] == "contract" else "import")
            )
            info["actions"] = denials
            channel.send([ERROR, 0, info])
            return
        if denials:
            channel.send([ERROR, 0, {"kind": "denied", "actions": denials}])
            return
        child = Child(channel, functions)
        child.denials = denials
        channel.send(
            [READY, 0, {"pid": os.getpid(), "layers": layers, "functions": sorted(functions)}]
        )
    except wire.PeerClosed:
        return
    try:
        child.run()
    except wire.PeerClosed:
        return
