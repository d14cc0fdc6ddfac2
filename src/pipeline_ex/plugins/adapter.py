"""One calling convention for class-style and module-style plugins, checked up front.

``PluginAdapter.from_target`` accepts a ``Plugin`` subclass (instantiated once), an
instance, or a module, and proves the contract before any plugin method is called: the
required functions exist and every contract function accepts exactly one positional
argument (``config`` or ``state``).  A failure is ``validation_failed`` naming the function.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType, MethodType, ModuleType
from typing import Any

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.behaviour import OPTIONAL_FUNCTIONS, REQUIRED_FUNCTIONS, Plugin


def _takes_one_argument(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be called with exactly one positional argument.

    Plain functions and methods are answered from their code object; ``inspect.signature``
    (the general path) costs tens of microseconds per call, which adds up over a hundred
    plugins at start-up.
    """
    fast = _one_argument_from_code(fn)
    if fast is not None:
        return fast
    import inspect  # the general path only: inspect costs ~5 ms to import

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # builtins without signatures: give them the benefit of the doubt
    try:
        signature.bind(object())
    except TypeError:
        return False
    return True


#: ``inspect.CO_VARARGS``: the code object takes ``*args``.
_CO_VARARGS = 0x04


def _one_argument_from_code(fn: Callable[..., Any]) -> bool | None:
    if type(fn) is MethodType:
        bound, target = 1, fn.__func__
    else:
        bound, target = 0, fn
    # Decorated (``__wrapped__``), given a ``__signature__``, or carrying any attribute at
    # all: let inspect.signature decide.  (Those attributes live in the function's dict.)
    if type(target) is not FunctionType or target.__dict__:
        return None
    code = target.__code__
    positional = code.co_argcount - bound
    defaults = target.__defaults__
    required = positional - len(defaults) if defaults else positional
    if code.co_kwonlyargcount:
        kwdefaults = target.__kwdefaults__
        if code.co_kwonlyargcount > (len(kwdefaults) if kwdefaults else 0):
            return False  # a required keyword-only argument can never be satisfied
    if code.co_flags & _CO_VARARGS:
        return required <= 1
    return positional >= 1 and required <= 1


def _nothing(_state: Any) -> list[Any]:
    return []


def _no_op(_state: Any) -> None:
    return None


#: Contract functions whose ``Plugin`` base-class version is the stand-in's twin: a
#: subclass that does not override one gets the stand-in (no plugin code runs in it).
_STAND_INS: dict[str, Callable[[Any], Any]] = {
    "terminate": _no_op,
    "get_step_types": _nothing,
    "get_providers": _nothing,
    "get_schema_extensions": _nothing,
}


def is_default(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is the host's stand-in for a contract function the plugin does not
    define (no plugin code runs in it: the manager need not guard a call to it)."""
    return fn is _nothing or fn is _no_op


class PluginAdapter:
    """The bound contract functions of one plugin object."""

    def __init__(self, target: Any, functions: dict[str, Callable[..., Any]], kind: str) -> None:
        self.target = target
        self.kind = kind
        self.init: Callable[[Any], Any] = functions["init"]
        self.get_metadata: Callable[[Any], Any] = functions["get_metadata"]
        self.terminate: Callable[[Any], Any] = functions.get("terminate", _no_op)
        self.get_step_types: Callable[[Any], Any] = functions.get("get_step_types", _nothing)
        self.get_providers: Callable[[Any], Any] = functions.get("get_providers", _nothing)
        self.get_schema_extensions: Callable[[Any], Any] = functions.get(
            "get_schema_extensions", _nothing
        )
        self.health_check: Callable[[Any], Any] | None = functions.get("health_check")

    def close(self) -> None:
        """Nothing to release: an in-process plugin's code stays imported until its
        modules are unloaded (see ``PluginHost.close`` for isolated plugins)."""

    @classmethod
    def from_target(cls, target: Any, *, plugin: str) -> PluginAdapter:
        obj: Any
        if isinstance(target, ModuleType):
            kind, obj = "module", target
        elif isinstance(target, type):
            try:
                obj = target()
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin!r}: cannot instantiate {target.__qualname__}: "
                    f"{type(exc).__name__}: {exc}",
                    code="validation_failed",
                    plugin=plugin,
                ) from exc
            kind = "class"
        else:
            kind, obj = "instance", target
        functions: dict[str, Callable[..., Any]] = {}
        for name in (*REQUIRED_FUNCTIONS, *OPTIONAL_FUNCTIONS):
            fn = getattr(obj, name, None)
            if fn is None:
                if name in REQUIRED_FUNCTIONS:
                    raise PluginError(
                        f"plugin {plugin!r}: the {kind} {_describe(target)} has no {name}()",
                        code="validation_failed",
                        plugin=plugin,
                    )
                continue
            stand_in = _STAND_INS.get(name)
            if stand_in is not None and getattr(fn, "__func__", None) is getattr(Plugin, name):
                functions[name] = stand_in  # the base class's own, not overridden
                continue
            if not callable(fn):
                raise PluginError(
                    f"plugin {plugin!r}: {name} is not callable",
                    code="validation_failed",
                    plugin=plugin,
                )
            if not _takes_one_argument(fn):
                import inspect

                raise PluginError(
                    f"plugin {plugin!r}: {name} must accept exactly one argument "
                    f"({'config' if name == 'init' else 'state'}), signature is "
                    f"{name}{inspect.signature(fn)}",
                    code="validation_failed",
                    plugin=plugin,
                )
            functions[name] = fn
        return cls(obj, functions, kind)


def _describe(target: Any) -> str:
    label = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    return str(label or repr(target))
