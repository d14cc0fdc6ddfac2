"""ProviderRegistry: provider name -> provider, plus the capabilities each one offers.

How ``select`` chooses (the same rule for the registry and for the views steps get):

1. **Mode.**  A provider with the capability ``mock`` serves only mock runs, one with
   ``live`` only live runs, any other (or one with both) serves both.  A view bound to a
   run's mode never sees providers of the other mode; the registry's own ``select`` without
   ``mode`` considers every provider.
2. **Priority.**  A provider may declare an integer attribute ``priority`` (default 0, read
   once when it is registered); higher wins.  The built-in ``mock_*`` and live ``claude``/
   ``gemini`` providers declare ``FALLBACK_PRIORITY`` (-10), so any plugin's provider of the
   default priority is chosen before them.
3. **Name.**  Equal priorities are ordered by provider name (code point order), so the
   answer does not depend on the order plugins happened to load in.

``select_all`` returns the whole ranked list; ``select``/``select_name`` its first entry.
The provider contract itself (``Provider``) lives in ``pipeline_ex.plugins.contracts``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pipeline_ex.errors import InvalidInputError, NoSuitableProviderError, UnknownProviderError
from pipeline_ex.registries.snapshot import SnapshotRegistry
from pipeline_ex.registries.views import ProviderView

#: The capabilities that tie a provider to one mode of run.
MODE_CAPABILITIES = frozenset({"mock", "live"})
#: The priority of the built-in providers: below any provider that declares none.
FALLBACK_PRIORITY = -10
#: Distinct capability sets whose answer one snapshot remembers (a bound on memory).
_MEMO_LIMIT = 256

#: Wraps a provider being registered: ``(owner, name, provider) -> provider``.
ProviderInstrument = Callable[[str, str, Any], Any]


def serves(capabilities: frozenset[str], mode: str | None) -> bool:
    """Whether a provider with ``capabilities`` may answer in ``mode`` (``None``: any)."""
    if mode is None:
        return True
    marks = capabilities & MODE_CAPABILITIES
    return not marks or mode in marks


def provider_priority(name: str, provider: Any) -> int:
    """The provider's declared ``priority`` (0 when it declares none); a non-integer is a
    mistake in the provider, refused with a typed error naming it."""
    value = getattr(provider, "priority", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"provider {name!r}: priority must be an integer, got {value!r}",
            code="validation_failed",
        )
    return value


def _priorities(
    owner: str,
    batch: list[tuple[str, Any, frozenset[str]]],
    given: Mapping[str, int] | None,
) -> dict[tuple[str, str], int]:
    if given is not None:
        return {(owner, name): int(given.get(name, 0)) for name, _, _ in batch}
    return {(owner, name): provider_priority(name, p) for name, p, _ in batch}


class ProviderNotInModeError(UnknownProviderError):
    """A provider exists but serves only the other mode of run (``claude`` in a mock run)."""

    def __init__(self, name: str, mode: str, available: Iterable[str]) -> None:
        super().__init__("provider", name, available)
        other = "live" if mode == "mock" else "mock"
        self.args = (
            f"provider {name!r} serves only {other} mode and this run is in {mode} mode; "
            f"providers for {mode} mode: {', '.join(self.available) or 'none'}",
        )


class Ranking:
    """One snapshot's providers for one mode, best first, and the answers given so far.

    Built lazily on the first read after a write and kept until the next write, so a
    ``select`` is a dict lookup once its capability set has been asked for.
    """

    __slots__ = ("chosen", "hidden", "mode", "names", "offered", "sources", "visible")

    def __init__(
        self,
        sources: tuple[object, ...],
        mode: str | None,
        items: Mapping[str, Any],
        owners: Mapping[str, str],
        caps: Mapping[tuple[str, str], frozenset[str]],
        priority: Mapping[tuple[str, str], int],
    ) -> None:
        self.sources = sources
        self.mode = mode
        entries: list[tuple[int, str]] = []
        self.visible: dict[str, Any] = {}
        self.offered: dict[str, frozenset[str]] = {}
        self.hidden: set[str] = set()
        for name, provider in items.items():
            key = (owners.get(name, ""), name)
            offered = caps.get(key, frozenset())
            if not serves(offered, mode):
                self.hidden.add(name)
                continue
            self.visible[name] = provider
            self.offered[name] = offered
            entries.append((-priority.get(key, 0), name))
        self.names = [name for _, name in sorted(entries)]
        self.chosen: dict[frozenset[str], list[str]] = {}

    def ranked_names(self, wanted: frozenset[str]) -> list[str]:
        names = self.chosen.get(wanted)
        if names is None:
            offered = self.offered
            names = [n for n in self.names if wanted <= offered[n]]
            if len(self.chosen) < _MEMO_LIMIT:
                self.chosen[wanted] = names
        return names

    def missing(self, name: str) -> UnknownProviderError:
        if self.mode is not None and name in self.hidden:
            return ProviderNotInModeError(name, self.mode, self.visible)
        return UnknownProviderError("provider", name, self.visible)

    def no_match(self, wanted: frozenset[str]) -> NoSuitableProviderError:
        where = f"for {self.mode} mode " if self.mode is not None else ""
        offered = "; ".join(f"{n}: {sorted(self.offered[n])}" for n in self.names)
        message = (
            f"no provider {where}offers all of {sorted(wanted)}; offered: {offered or 'nothing'}"
        )
        if self.hidden:
            message += f" (not considered, other mode: {', '.join(sorted(self.hidden))})"
        return NoSuitableProviderError(message)


class ProviderRegistry(SnapshotRegistry[Any]):
    """``get(name)`` returns the provider itself; capabilities are kept beside it.

    Capabilities and priorities are keyed by ``(owner, name)`` so that a provider restored
    after an override ends keeps its own.  ``view(mode)`` gives the read-only object steps
    receive as ``context.providers``.
    """

    kind = "provider"
    missing_error = UnknownProviderError

    def __init__(self) -> None:
        super().__init__()
        self._instrument: ProviderInstrument | None = None
        self._caps: dict[tuple[str, str], frozenset[str]] = {}
        self._priority: dict[tuple[str, str], int] = {}
        self._rankings: dict[str | None, Ranking] = {}
        self._views: dict[str, ProviderView] = {}

    # -- writes -----------------------------------------------------------------------------
    def instrument(self, wrap: ProviderInstrument | None) -> None:
        """Set how registered providers are wrapped (the plugin manager's guard, so that a
        provider registered straight into the registry is counted like a plugin's); applies
        to registrations from now on."""
        self._instrument = wrap

    def _wrapped(self, owner: str, name: str, provider: Any) -> Any:
        wrap = self._instrument
        return provider if wrap is None else wrap(owner, name, provider)

    def register_providers(
        self,
        entries: Iterable[tuple[str, Any, Iterable[str]]],
        owner: str,
        *,
        replace: frozenset[str] = frozenset(),
        priorities: Mapping[str, int] | None = None,
    ) -> None:
        """Register ``(name, provider, capabilities)`` triples as one batch.

        ``priorities`` (name -> priority) is what the plugin manager read from the providers
        inside the plugin's deadline; without it the attribute is read here.
        """
        batch = [(name, p, frozenset(c)) for name, p, c in entries]
        keyed = _priorities(owner, batch, priorities)
        batch = [(name, self._wrapped(owner, name, p), c) for name, p, c in batch]
        with self._write_lock:
            # Capabilities go in first: a reader that sees the new provider sees its
            # capabilities too.  They are keyed by owner, so nobody reads them before the
            # swap, and a refused batch takes them back out.
            before = self._caps, self._priority
            self._caps = {**self._caps, **{(owner, name): c for name, _, c in batch}}
            self._priority = {**self._priority, **keyed}
            try:
                self._swap_in({name: p for name, p, _ in batch}, owner, replace)
            except BaseException:
                self._caps, self._priority = before
                raise

    def replace_providers(
        self,
        owner: str,
        entries: Iterable[tuple[str, Any, Iterable[str]]],
        priorities: Mapping[str, int] | None = None,
    ) -> list[tuple[str, Any, frozenset[str]]]:
        """Swap ``owner``'s providers in one step; returns the old entries (for rollback;
        ``priorities_of(owner)`` beforehand gives their priorities)."""
        batch = [(name, p, frozenset(c)) for name, p, c in entries]
        keyed = _priorities(owner, batch, priorities)
        batch = [(name, self._wrapped(owner, name, p), c) for name, p, c in batch]
        old_caps = {k[1]: v for k, v in self._caps.items() if k[0] == owner}
        with self._write_lock:
            # The new capabilities go in before the new providers, as in register_providers,
            # and come back out if the swap is refused.
            before = self._caps, self._priority
            self._caps = {**self._caps, **{(owner, name): c for name, _, c in batch}}
            self._priority = {**self._priority, **keyed}
        try:
            old = self.replace_owner(owner, {name: p for name, p, _ in batch})
        except BaseException:
            with self._write_lock:
                self._caps, self._priority = before
            raise
        with self._write_lock:
            fresh = {name for name, _, _ in batch}
            self._caps = {k: v for k, v in self._caps.items() if k[0] != owner or k[1] in fresh}
            self._priority = {
                k: v for k, v in self._priority.items() if k[0] != owner or k[1] in fresh
            }
        return [(n, p, old_caps.get(n, frozenset())) for n, p in old.items()]

    def unregister_owner(self, owner: str) -> list[str]:
        gone = super().unregister_owner(owner)
        with self._write_lock:
            self._caps = {k: v for k, v in self._caps.items() if k[0] != owner}
            self._priority = {k: v for k, v in self._priority.items() if k[0] != owner}
        return gone

    # -- reads ------------------------------------------------------------------------------
    def ranking(self, mode: str | None = None) -> Ranking:
        """The providers serving ``mode`` (``None``: all), best first, for this snapshot."""
        items, owners, caps, priority = self._items, self._owners, self._caps, self._priority
        ranking = self._rankings.get(mode)
        if ranking is not None:
            seen = ranking.sources
            if seen[0] is items and seen[1] is owners and seen[2] is caps and seen[3] is priority:
                return ranking
        ranking = Ranking((items, owners, caps, priority), mode, items, owners, caps, priority)
        self._rankings[mode] = ranking
        return ranking

    def capabilities(self, name: str) -> frozenset[str]:
        self.get(name)
        return self._caps.get((self._owners.get(name, ""), name), frozenset())

    def priorities_of(self, owner: str) -> dict[str, int]:
        return {k[1]: v for k, v in self._priority.items() if k[0] == owner}

    def priority(self, name: str) -> int:
        self.get(name)
        return self._priority.get((self._owners.get(name, ""), name), 0)

    def all_capabilities(self) -> Mapping[str, frozenset[str]]:
        items, owners, caps = self._items, self._owners, self._caps
        return {n: caps.get((owners.get(n, ""), n), frozenset()) for n in items}

    def select_all(self, capabilities: Iterable[str], *, mode: str | None = None) -> list[Any]:
        """Every provider serving ``mode`` that offers all ``capabilities``, best first."""
        ranking = self.ranking(mode)
        return [ranking.visible[n] for n in ranking.ranked_names(frozenset(capabilities))]

    def select_name(self, capabilities: Iterable[str], *, mode: str | None = None) -> str:
        """The best-ranked provider name offering every capability asked for (module doc)."""
        ranking = self.ranking(mode)
        wanted = frozenset(capabilities)
        names = ranking.ranked_names(wanted)
        if not names:
            raise ranking.no_match(wanted)
        return names[0]

    def select(self, capabilities: Iterable[str], *, mode: str | None = None) -> Any:
        ranking = self.ranking(mode)
        wanted = frozenset(capabilities)
        names = ranking.ranked_names(wanted)
        if not names:
            raise ranking.no_match(wanted)
        return ranking.visible[names[0]]

    def view(self, mode: str) -> ProviderView:
        """The read-only, mode-bound view handed to steps; one per mode, built once."""
        view = self._views.get(mode)
        if view is None:
            view = self._views.setdefault(mode, ProviderView(self, mode))
        return view
