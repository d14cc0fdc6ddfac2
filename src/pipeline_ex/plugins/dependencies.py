"""Dependency planning: order plugins with graphlib and find every problem in one pass."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.metadata import Dependency
from pipeline_ex.records import MutableRecord, Record, put


class Candidate(Record):
    """What planning needs to know about a plugin before it is initialised."""

    __slots__ = ("conflicts", "dependencies", "name", "version")
    FIELDS = ("name", "version", "dependencies", "conflicts")
    name: str
    version: str | None
    dependencies: tuple[Dependency, ...]
    conflicts: tuple[str, ...]

    def __init__(
        self,
        name: str,
        version: str | None,
        dependencies: tuple[Dependency, ...] = (),
        conflicts: tuple[str, ...] = (),
    ) -> None:
        put(self, "name", name)
        put(self, "version", version)
        put(self, "dependencies", dependencies)
        put(self, "conflicts", conflicts)


class Plan(MutableRecord):
    """The load order, and the plugins planning already refused (with why)."""

    __slots__ = ("failures", "order")
    FIELDS = ("order", "failures")

    def __init__(
        self,
        order: list[str] | None = None,
        failures: dict[str, PluginError] | None = None,
    ) -> None:
        self.order: list[str] = [] if order is None else order
        self.failures: dict[str, PluginError] = {} if failures is None else failures


def _find_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        return cycle
    return []


def dependency_failed(name: str, dependency: str, failure: PluginError) -> PluginError:
    """``name`` is not loaded because ``dependency`` failed with ``failure``."""
    return PluginError(
        f"plugin {name!r} was not loaded because its dependency {dependency!r} failed "
        f"({failure.code})",
        code="dependency_missing",
        plugin=name,
    )


def check(
    c: Candidate,
    pending: Mapping[str, Candidate],
    loaded: Mapping[str, str],
    versions: Mapping[str, str | None],
) -> PluginError | None:
    """The first problem with ``c``'s dependencies and conflicts, given the plugins being
    loaded with it (``pending``), those already active (``loaded``) and known versions."""
    for dep in c.dependencies:
        if dep.name == c.name:
            return PluginError(
                f"plugin {c.name!r} depends on itself", code="dependency_cycle", plugin=c.name
            )
        if dep.name not in pending and dep.name not in loaded:
            return PluginError(
                f"plugin {c.name!r} needs {dep.described()}, which is not loaded or enabled",
                code="dependency_missing",
                plugin=c.name,
            )
        found = versions.get(dep.name)
        if dep.name in versions and not dep.allows(found or ""):
            return PluginError(
                f"plugin {c.name!r} needs {dep.described(found or '')} but {dep.name} is "
                f"version {found}",
                code="version_conflict",
                plugin=c.name,
            )
    for other in c.conflicts:
        if other in pending or other in loaded:
            return PluginError(
                f"plugin {c.name!r} declares a conflict with {other!r}, which is also enabled",
                code="component_conflict",
                plugin=c.name,
            )
    return None


def check_against_loaded(c: Candidate, loaded: Mapping[str, str]) -> PluginError | None:
    """``check`` for one plugin joining those already active (after its init)."""
    return check(c, {}, loaded, loaded)


def plan(candidates: Iterable[Candidate], loaded: Mapping[str, str]) -> Plan:
    """Order ``candidates``; ``loaded`` maps already-active plugin names to versions.

    Missing dependencies, unsatisfied specifiers, declared conflicts and cycles are all
    reported; a plugin that depends on a failed one fails too, naming it.
    """
    pending = {c.name: c for c in candidates}
    result = Plan()
    versions = {**loaded, **{c.name: c.version for c in pending.values() if c.version}}

    for c in pending.values():
        problem = check(c, pending, loaded, versions)
        if problem is not None:
            result.failures[c.name] = problem

    graph = {
        c.name: {d.name for d in c.dependencies if d.name in pending}
        for c in pending.values()
        if c.name not in result.failures
    }
    if not any(graph.values()):
        # No plugin of the batch needs another one of it (the usual case): graphlib's
        # order would be the given order, and there is no cycle to look for.
        result.order.extend(graph)
        return result
    while True:
        cycle = _find_cycle({n: {d for d in deps if d in graph} for n, deps in graph.items()})
        if not cycle:
            break
        path = " -> ".join(cycle)
        for name in set(cycle):
            result.failures[name] = PluginError(
                f"plugin {name!r} is part of a dependency cycle: {path}",
                code="dependency_cycle",
                plugin=name,
            )
            graph.pop(name, None)

    order = list(
        graphlib.TopologicalSorter(
            {n: {d for d in deps if d in pending} for n, deps in graph.items()}
        ).static_order()
    )
    for name in order:
        if name not in graph:
            continue  # a failed dependency named only as a predecessor
        failed = [d for d in pending[name].dependencies if d.name in result.failures]
        if failed:
            result.failures[name] = dependency_failed(
                name, failed[0].name, result.failures[failed[0].name]
            )
            continue
        result.order.append(name)
    return result


def shutdown_order(dependencies: Mapping[str, Iterable[str]]) -> list[str]:
    """Dependents before their dependencies: the reverse of a topological order."""
    graph = {n: {d for d in deps if d in dependencies} for n, deps in dependencies.items()}
    try:
        return list(reversed(list(graphlib.TopologicalSorter(graph).static_order())))
    except graphlib.CycleError:
        return list(reversed(list(dependencies)))
