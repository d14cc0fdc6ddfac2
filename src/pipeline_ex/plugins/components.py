"""What a plugin offered, turned into host-side data before anything is registered.

Everything here touches plugin-provided objects: it iterates what ``get_*`` returned,
instantiates component classes, reads a step's ``execute``, ``raw_keys``,
``owns_condition``, ``preflight`` and ``semantic_check``, and copies schema fragments.  The
manager runs it as one watched call, under the plugin's deadline.  Afterwards the host
holds only its own objects: a ``StepHandle`` per step type with its hooks read and
type-checked once, capability lists of plain strings, schema fragments copied to plain JSON
data.  No registry write and no dispatch reads an attribute of a plugin object again, so a
property that hangs or lies cannot stall the host outside a deadline (or while a registry
write lock is held), and an endless iterable is cut off at a bound instead of being
consumed forever.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from pipeline_ex.errors import PipelineExError, PluginError
from pipeline_ex.plugins.guard import checkpoint
from pipeline_ex.plugins.registry import Components
from pipeline_ex.registries.providers import provider_priority

#: Most components of one kind a plugin may offer (a generous bound: the benchmarks
#: register 10,000 in one batch); an endless iterable stops here.
MAX_COMPONENTS = 100_000
#: Most values in one schema extension, and its deepest nesting.
MAX_SCHEMA_NODES = 100_000
MAX_SCHEMA_DEPTH = 64
#: How often (in items) long loops over plugin data ask whether they were abandoned.
_CHECK_EVERY = 1024


class StepHandle:
    """The host's record of one registered step type.

    It carries the plugin's step object (``target``) and what the engine needs from it,
    read once inside the plugin's deadline: ``execute`` (the bound method), ``raw_keys``
    (a frozenset of strings), ``owns_condition`` (a bool), ``preflight`` and
    ``semantic_check`` (callables or ``None``; the manager wraps them in the guard), and a
    one-line ``description``.  ``call`` is the guarded dispatcher the StepRegistry hands to
    the engine; ``lease`` tracks that version's calls in flight.
    """

    # A __dict__ filled by one update rather than slots written one by one: a plugin load
    # makes one handle per step type (see ``PluginRecord``).
    plugin: str
    name: str
    target: Any
    execute: Callable[[Any, Any], Any]
    raw_keys: frozenset[str]
    owns_condition: bool
    preflight: Callable[[Any, Any], Any] | None
    semantic_check: Callable[[Any], Any] | None
    description: str
    call: Callable[[Any, Any], Any] | None
    lease: Any

    def __init__(
        self,
        *,
        plugin: str,
        name: str,
        target: Any,
        execute: Callable[[Any, Any], Any],
        raw_keys: frozenset[str] = frozenset(),
        owns_condition: bool = False,
        preflight: Callable[[Any, Any], Any] | None = None,
        semantic_check: Callable[[Any], Any] | None = None,
        description: str = "",
    ) -> None:
        # Straight into the instance dict: the checked __setattr__ has nothing to refuse
        # before freeze.
        self.__dict__.update(
            _frozen=False,
            plugin=plugin,
            name=name,
            target=target,
            execute=execute,
            raw_keys=raw_keys,
            owns_condition=owns_condition,
            preflight=preflight,
            semantic_check=semantic_check,
            description=description,
            call=None,
            lease=None,
        )

    def __setattr__(self, attribute: str, value: Any) -> None:
        _refuse_when_frozen(self, attribute)
        object.__setattr__(self, attribute, value)

    def freeze(self) -> None:
        """Read-only from now on: a step that reaches this handle (through
        ``context.step_types``) cannot re-point it for every later run."""
        object.__setattr__(self, "_frozen", True)

    def __repr__(self) -> str:
        return f"<step type {self.name!r} of plugin {self.plugin!r}>"


def _refuse_when_frozen(handle: Any, attribute: str) -> None:
    """Handles are armed by the plugin manager, then frozen (``_frozen`` is set first)."""
    if attribute != "_frozen" and object.__getattribute__(handle, "_frozen"):
        raise AttributeError(f"{handle!r} is read-only; its {attribute} cannot be replaced")


class ProviderHandle:
    """The host's record of one registered provider: ``query`` is the guarded call (timed,
    counted as the provider's own calls, holding the version's lease); every other
    attribute is the plugin's provider object's (``target``), read when asked for."""

    __slots__ = ("_frozen", "lease", "name", "plugin", "preflight", "query", "target")

    def __init__(self, *, plugin: str, name: str, target: Any) -> None:
        self._frozen = False
        self.plugin = plugin
        self.name = name
        self.target = target
        self.lease: Any = None
        self.query: Callable[[str, dict[str, Any]], Any] = target.query
        preflight = getattr(target, "preflight", None)
        self.preflight: Callable[[], Any] | None = preflight if callable(preflight) else None

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.target, attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        _refuse_when_frozen(self, attribute)
        object.__setattr__(self, attribute, value)

    def freeze(self) -> None:
        """Read-only from now on: a step that gets this handle from ``context.providers``
        cannot replace its ``query`` for every later run."""
        object.__setattr__(self, "_frozen", True)

    def __repr__(self) -> str:
        return f"<provider {self.name!r} of plugin {self.plugin!r}>"


class Prepared(NamedTuple):
    """A plugin's components, checked and instantiated, not yet registered anywhere."""

    steps: dict[str, Any]
    providers: list[tuple[str, Any, list[str]]]
    extensions: dict[str, dict[str, Any]]
    #: Each provider's declared ``priority``, read here rather than by the registry.
    priorities: dict[str, int] = {}

    def names(self) -> Components:
        return Components(
            step_types=tuple(self.steps),
            providers=tuple(name for name, _, _ in self.providers),
            schema_extensions=tuple(self.extensions),
        )


def _refuse(plugin: str, message: str) -> PluginError:
    return PluginError(f"plugin {plugin!r}: {message}", code="validation_failed", plugin=plugin)


def _instantiate(component: Any, *, plugin: str, what: str, name: str) -> Any:
    """A class is instantiated once, at registration; an instance is used as it is."""
    if not isinstance(component, type):
        return component
    try:
        return component()
    except Exception as exc:
        raise _refuse(
            plugin,
            f"cannot instantiate {what} {name!r} ({component.__qualname__}): "
            f"{type(exc).__name__}: {exc}",
        ) from exc


def _entries(value: Any, width: int, plugin: str, what: str) -> list[tuple[Any, ...]]:
    """What ``get_<what>`` returned, as a list of ``width``-tuples with a name first.

    Read at most ``MAX_COMPONENTS`` + 1 items: a plugin returning ``itertools.count()``
    is refused at the bound, not consumed until memory runs out.
    """
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = value.items()
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise _refuse(plugin, f"get_{what} must return a list, got {type(value).__name__}")
    out: list[tuple[Any, ...]] = []
    for index, item in enumerate(itertools.islice(value, MAX_COMPONENTS + 1)):
        if index % _CHECK_EVERY == 0:
            checkpoint()
        if index == MAX_COMPONENTS:
            raise _refuse(plugin, f"get_{what} offered more than {MAX_COMPONENTS} entries")
        if not isinstance(item, tuple | list) or len(item) != width:
            raise _refuse(plugin, f"each entry of get_{what} must be a {width}-tuple, got {item!r}")
        if not isinstance(item[0], str) or not item[0]:
            raise _refuse(plugin, f"{what} name must be a non-empty string, got {item[0]!r}")
        out.append(tuple(item))
    seen: set[str] = set()
    for entry in out:
        if entry[0] in seen:
            raise _refuse(plugin, f"offers {what.rstrip('s').replace('_', ' ')} {entry[0]!r} twice")
        seen.add(entry[0])
    return out


def _optional_callable(obj: Any, attribute: str, plugin: str, name: str) -> Any:
    hook = getattr(obj, attribute, None)
    if hook is not None and not callable(hook):
        raise _refuse(plugin, f"step type {name!r}: {attribute} must be callable, got {hook!r}")
    return hook


def _step_handle(plugin: str, name: str, component: Any) -> StepHandle:
    step = _instantiate(component, plugin=plugin, what="step type", name=name)
    execute = getattr(step, "execute", None)
    if not callable(execute):
        raise _refuse(plugin, f"step type {name!r} has no execute(step, context)")
    raw = getattr(step, "raw_keys", ())
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise _refuse(plugin, f"step type {name!r}: raw_keys must be a set of key names")
    raw_keys = frozenset(itertools.islice(raw, 1000))
    if not all(isinstance(key, str) for key in raw_keys):
        raise _refuse(plugin, f"step type {name!r}: raw_keys must hold strings only")
    owns_condition = getattr(step, "owns_condition", False)
    if not isinstance(owns_condition, bool):
        raise _refuse(plugin, f"step type {name!r}: owns_condition must be true or false")
    doc = _docstring(step)
    return StepHandle(
        plugin=plugin,
        name=name,
        target=step,
        execute=execute,
        raw_keys=raw_keys,
        owns_condition=owns_condition,
        preflight=_optional_callable(step, "preflight", plugin, name),
        semantic_check=_optional_callable(step, "semantic_check", plugin, name),
        description=doc.strip().splitlines()[0] if doc.strip() else "",
    )


def _docstring(step: Any) -> str:
    """The step's docstring, as ``inspect.getdoc`` finds it for an instance (its class's
    own ``__doc__``; none is inherited), without importing ``inspect``: only the first
    line is kept, so indentation does not matter."""
    doc = getattr(step, "__doc__", None)
    return doc if isinstance(doc, str) else ""


def plain_json(value: Any, *, plugin: str, where: str) -> Any:
    """A deep copy of ``value`` made of dict/list/str/int/float/bool/None only.

    Schema fragments come from plugin code and are read again on every validation: copying
    them once to plain data means no plugin object (a mapping with a hanging ``__iter__``,
    a string subclass with a lying ``__eq__``) is ever touched afterwards.  Bounded in size
    and depth like a workflow document.
    """
    if type(value) is dict and len(value) < _CHECK_EVERY:
        flat = _flat_copy(value)
        if flat is not None:
            return flat
    budget = [MAX_SCHEMA_NODES]

    # The JSON pointer of a node is only spelled out for an error: the refusal is raised
    # as a ``_Misfit`` and each container it passes through on the way out adds its key
    # (building a pointer string per node was most of the cost of a copy).
    def copy(node: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _refuse(plugin, f"{where} has more than {MAX_SCHEMA_NODES} values")
        if depth > MAX_SCHEMA_DEPTH:
            raise _Misfit(f"{where} is nested deeper than {MAX_SCHEMA_DEPTH} at {_AT}", "")
        if budget[0] % _CHECK_EVERY == 0:
            checkpoint()
        kind = type(node)
        if node is None or kind is str or kind is int or kind is bool:
            return node
        if kind is float:
            if not math.isfinite(node):
                raise _Misfit(f"{where} holds a non-finite number at {_AT}", "/")
            return node
        if kind is dict or isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for key, item in node.items():
                if type(key) is not str:
                    raise _Misfit(f"{where} has a non-string key {key!r} at {_AT}", "/")
                try:
                    out[key] = copy(item, depth + 1)
                except _Misfit as misfit:
                    misfit.parts.append(_escape(key))
                    raise
            return out
        if kind is list or kind is tuple:
            copied = []
            for index, item in enumerate(node):
                try:
                    copied.append(copy(item, depth + 1))
                except _Misfit as misfit:
                    misfit.parts.append(str(index))
                    raise
            return copied
        raise _Misfit(
            f"{where} holds a {kind.__name__} at {_AT}; "
            "only JSON values (mappings, lists, strings, numbers, booleans, null) are allowed",
            "/",
        )

    try:
        return copy(value, 0)
    except _Misfit as misfit:
        pointer = "".join("/" + part for part in reversed(misfit.parts)) or misfit.root
        raise _refuse(plugin, misfit.template.replace(_AT, pointer)) from None


def _flat_copy(value: dict[Any, Any]) -> dict[str, Any] | None:
    """A copy of a dict of string keys and plain scalars (most metadata answers), or
    ``None`` when anything in it needs the general walk (a nested value, another type,
    a non-finite number): the same answer ``plain_json`` would give, with the types
    gathered by ``map`` (C loops) instead of a Python-level check per value."""
    if not _STRING_KEYS.issuperset(map(type, value)):
        return None
    kinds = set(map(type, value.values()))
    if not _FLAT_KINDS.issuperset(kinds):
        return None
    if float in kinds and not all(map(math.isfinite, _floats(value))):
        return None
    return dict(value)


def _floats(value: dict[Any, Any]) -> list[float]:
    return [item for item in value.values() if type(item) is float]


_STRING_KEYS = frozenset({str})
#: The exact types a flat answer may hold (``None``'s type included; no subclasses).
_FLAT_KINDS = frozenset({str, int, bool, float, type(None)})


#: Where a ``_Misfit``'s pointer goes in its message (no format(): keys may hold braces).
_AT = "\x00at\x00"


class _Misfit(Exception):
    """A value ``plain_json`` refuses, on its way out to the top (see there)."""

    def __init__(self, template: str, root: str) -> None:
        super().__init__(template)
        #: The message, with ``_AT`` where the pointer goes.
        self.template = template
        #: How the document's root is spelled in this message ("/" or "").
        self.root = root
        #: The keys from the refused node up, innermost first.
        self.parts: list[str] = []


def _escape(key: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def prepare(plugin: str, step_types: Any, providers: Any, schema_extensions: Any) -> Prepared:
    """Normalise and check what the plugin offered, before touching any registry.

    This handles plugin objects, so the manager runs it as a watched call.
    """
    steps = {
        name: _step_handle(plugin, name, component)
        for name, component in _entries(step_types, 2, plugin, "step_types")
    }
    provider_entries = []
    priorities: dict[str, int] = {}
    for name, component, capabilities in _entries(providers, 3, plugin, "providers"):
        provider = _instantiate(component, plugin=plugin, what="provider", name=name)
        if not callable(getattr(provider, "query", None)):
            raise _refuse(plugin, f"provider {name!r} has no query(prompt, options)")
        if isinstance(capabilities, str) or not isinstance(capabilities, Iterable):
            raise _refuse(plugin, f"provider {name!r} capabilities must be a list of strings")
        caps = list(itertools.islice(capabilities, 1001))
        if len(caps) > 1000 or not all(type(c) is str for c in caps):
            raise _refuse(plugin, f"provider {name!r} capabilities must be a list of strings")
        try:
            priorities[name] = provider_priority(name, provider)
        except PipelineExError as exc:
            raise _refuse(plugin, exc.message) from None
        provider_entries.append(
            (name, ProviderHandle(plugin=plugin, name=name, target=provider), caps)
        )
    extensions = {}
    for name, schema in _entries(schema_extensions, 2, plugin, "schema_extensions"):
        if not isinstance(schema, Mapping):
            raise _refuse(plugin, f"schema extension {name!r} must be a mapping")
        extensions[name] = plain_json(schema, plugin=plugin, where=f"schema extension {name!r}")
    return Prepared(steps, provider_entries, extensions, priorities)
