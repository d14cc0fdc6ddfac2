"""ProviderRegistry: provider name -> provider, plus the capabilities each one offers.

The provider contract itself (``Provider``) lives in ``pipeline_ex.plugins.contracts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pipeline_ex.errors import NoSuitableProviderError, UnknownProviderError
from pipeline_ex.registries.snapshot import SnapshotRegistry


class ProviderRegistry(SnapshotRegistry[Any]):
    """``get(name)`` returns the provider itself; capabilities are kept beside it.

    Capabilities are keyed by ``(owner, name)`` so that a provider restored after an
    override ends keeps its own capability list.
    """

    kind = "provider"
    missing_error = UnknownProviderError

    def __init__(self) -> None:
        super().__init__()
        self._caps: dict[tuple[str, str], frozenset[str]] = {}

    def register_providers(
        self,
        entries: Iterable[tuple[str, Any, Iterable[str]]],
        owner: str,
        *,
        replace: frozenset[str] = frozenset(),
    ) -> None:
        """Register ``(name, provider, capabilities)`` triples as one batch."""
        entries = list(entries)
        with self._write_lock:
            # Capabilities go in first: a reader that sees the new provider sees its
            # capabilities too.  They are keyed by owner, so nobody reads them before the
            # swap, and a refused batch takes them back out.
            before = self._caps
            caps = dict(before)
            caps.update({(owner, name): frozenset(c) for name, _, c in entries})
            self._caps = caps
            try:
                self._swap_in({name: p for name, p, _ in entries}, owner, replace)
            except BaseException:
                self._caps = before
                raise

    def replace_providers(
        self, owner: str, entries: Iterable[tuple[str, Any, Iterable[str]]]
    ) -> list[tuple[str, Any, frozenset[str]]]:
        """Swap ``owner``'s providers in one step; returns the old entries (for rollback)."""
        entries = list(entries)
        old_caps = {k[1]: v for k, v in self._caps.items() if k[0] == owner}
        old = self.replace_owner(owner, {name: p for name, p, _ in entries})
        with self._write_lock:
            caps = {k: v for k, v in self._caps.items() if k[0] != owner}
            caps.update({(owner, name): frozenset(c) for name, _, c in entries})
            self._caps = caps
        return [(n, p, old_caps.get(n, frozenset())) for n, p in old.items()]

    def unregister_owner(self, owner: str) -> list[str]:
        gone = super().unregister_owner(owner)
        with self._write_lock:
            self._caps = {k: v for k, v in self._caps.items() if k[0] != owner}
        return gone

    def capabilities(self, name: str) -> frozenset[str]:
        self.get(name)
        return self._caps.get((self._owners.get(name, ""), name), frozenset())

    def all_capabilities(self) -> Mapping[str, frozenset[str]]:
        items, owners, caps = self._items, self._owners, self._caps
        return {n: caps.get((owners.get(n, ""), n), frozenset()) for n in items}

    def select_name(self, capabilities: Iterable[str]) -> str:
        """The first provider name (registration order) offering every capability asked for."""
        wanted = frozenset(capabilities)
        offered = self.all_capabilities()
        for name, caps in offered.items():
            if wanted <= caps:
                return name
        raise NoSuitableProviderError(
            f"no provider offers all of {sorted(wanted)}; offered: "
            + ("; ".join(f"{n}: {sorted(c)}" for n, c in offered.items()) or "nothing")
        )

    def select(self, capabilities: Iterable[str]) -> Any:
        return self._items[self.select_name(capabilities)]
