"""Copy-on-write registries: readers do a plain dict lookup, writers swap a whole snapshot.

Registries are read on every step of every run, from many threads, while plugins are being
loaded and unloaded.  Instead of locking readers, every write builds a new dict and replaces
the reference in one assignment (atomic in CPython); a reader holding the old dict keeps a
consistent view.  Writes are batches so a plugin's components appear (or vanish) together.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

from pipeline_ex.errors import ComponentConflictError, UnknownComponentError

T = TypeVar("T")


class NameTakenError(ComponentConflictError):
    """A batch would take names another owner holds; ``names`` lists them."""

    def __init__(self, message: str, *, names: tuple[str, ...]) -> None:
        super().__init__(message)
        self.names = names


class SnapshotRegistry(Mapping[str, T], Generic[T]):
    """A read-only mapping ``name -> component`` whose writes are all-or-nothing batches.

    Each entry remembers its owner (a plugin name) so unloading removes exactly what that
    owner registered and a second owner cannot silently take a name over.
    """

    kind = "component"
    missing_error: type[UnknownComponentError] = UnknownComponentError

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._owners: dict[str, str] = {}
        self._write_lock = threading.Lock()
        # name -> [(owner, component), ...] taken over by an explicit override; restored
        # when the overriding owner goes away.
        self._shadowed: dict[str, list[tuple[str, T]]] = {}
        self._version = 0

    @property
    def version(self) -> int:
        """Bumped by every write: what was derived from an older snapshot (a cached
        validation verdict) is stale once this moves."""
        return self._version

    # -- reads: no locks, one dict lookup ---------------------------------------------------
    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise self.missing_error(self.kind, name, self._items) from None

    def get(self, name: str, default: T | None = None) -> T:  # type: ignore[override]
        """Return the component, or raise a ``KeyError`` subclass naming what is registered.

        Unlike ``dict.get`` there is no silent ``None``: a missing step type or provider is
        always a user-facing error, so the lookup says so.  ``default`` is honoured when given.
        """
        try:
            return self._items[name]
        except KeyError:
            if default is not None:
                return default
            raise self.missing_error(self.kind, name, self._items) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def snapshot(self) -> Mapping[str, T]:
        """The current immutable view; later writes do not change it."""
        return MappingProxyType(self._items)

    def owner(self, name: str) -> str:
        return self._owners[name]

    def owned_by(self, owner: str) -> list[str]:
        return [n for n, o in self._owners.items() if o == owner]

    # -- writes: whole-batch swaps ----------------------------------------------------------
    def register_batch(
        self, items: Mapping[str, T], owner: str, *, replace: frozenset[str] = frozenset()
    ) -> None:
        """Add every item of ``items`` for ``owner`` or, on any clash, none of them.

        ``replace`` names components this owner is explicitly allowed to take over from
        another owner (an override the configuration asked for).
        """
        with self._write_lock:
            self._swap_in(items, owner, replace)

    def _refuse_clashes(self, items: Mapping[str, T], owner: str, replace: frozenset[str]) -> None:
        """Raise ``ComponentConflictError`` when ``items`` would take another owner's names."""
        taken = [
            name
            for name in items
            if name in self._items and self._owners[name] != owner and name not in replace
        ]
        if taken:
            clashes = ", ".join(f"{name!r} (owned by {self._owners[name]!r})" for name in taken)
            raise NameTakenError(
                f"{self.kind} name(s) already registered: {clashes}; "
                f"refusing every {self.kind} of {owner!r}",
                names=tuple(taken),
            )

    def _swap_in(self, items: Mapping[str, T], owner: str, replace: frozenset[str]) -> None:
        """Check for clashes and swap in the new snapshot; caller holds the write lock."""
        self._refuse_clashes(items, owner, replace)
        self._publish(
            *self._with(self._items, self._owners, self._shadowed, items, owner), set(items)
        )

    def unregister_owner(self, owner: str) -> list[str]:
        """Remove everything ``owner`` registered, in one swap; returns the names removed.

        A component this owner had overridden comes back to its previous owner, in the
        position it had (so "first registered" stays first for ``select``).
        """
        with self._write_lock:
            items, owners, shadowed, gone = self._without(owner)
            self._publish(items, owners, shadowed, set(gone))
            return gone

    def replace_owner(
        self, owner: str, items: Mapping[str, T], *, replace: frozenset[str] = frozenset()
    ) -> dict[str, T]:
        """Swap ``owner``'s components for ``items`` in one step (a reload); returns the old.

        Readers see either the old set or the new one, never neither; overrides are kept,
        given up or taken as with an unload followed by a load.
        """
        with self._write_lock:
            old = {n: c for n, c in self._items.items() if self._owners[n] == owner}
            self._refuse_clashes(items, owner, replace)
            kept, kept_owners, shadowed, gone = self._without(owner)
            self._publish(*self._with(kept, kept_owners, shadowed, items, owner), {*gone, *items})
            return old

    # -- the pure part of writing: new dicts, published by _publish --------------------------
    @staticmethod
    def _with(
        items: dict[str, T],
        owners: dict[str, str],
        shadowed: dict[str, list[tuple[str, T]]],
        added: Mapping[str, T],
        owner: str,
    ) -> tuple[dict[str, T], dict[str, str], dict[str, list[tuple[str, T]]]]:
        """``items`` plus ``added`` for ``owner``; a name taken from another owner (an
        override) is remembered in ``shadowed`` to come back when ``owner`` goes."""
        new_shadowed = {name: list(stack) for name, stack in shadowed.items()}
        for name in added:
            previous = owners.get(name)
            if previous is not None and previous != owner:
                new_shadowed.setdefault(name, []).append((previous, items[name]))
        new_items = {**items, **added}
        new_owners = {**owners, **dict.fromkeys(added, owner)}
        return new_items, new_owners, new_shadowed

    def _without(
        self, owner: str
    ) -> tuple[dict[str, T], dict[str, str], dict[str, list[tuple[str, T]]], list[str]]:
        """The current snapshot without ``owner``'s components, overridden ones restored."""
        shadowed = {
            name: kept
            for name, stack in self._shadowed.items()
            if (kept := [(o, c) for o, c in stack if o != owner])
        }
        gone = [n for n, o in self._owners.items() if o == owner]
        removed = set(gone)
        items: dict[str, T] = {}
        owners: dict[str, str] = {}
        for name, component in self._items.items():
            if name not in removed:
                items[name], owners[name] = component, self._owners[name]
                continue
            stack = shadowed.get(name)
            if stack:
                previous_owner, restored = stack.pop()
                if not stack:
                    del shadowed[name]
                items[name], owners[name] = restored, previous_owner
        return items, owners, shadowed, gone

    def _publish(
        self,
        items: dict[str, T],
        owners: dict[str, str],
        shadowed: dict[str, list[tuple[str, T]]],
        touched: set[str],
    ) -> None:
        """Make a computed snapshot current; caller holds the write lock.

        ``_before_write`` may refuse (raise) while nothing has changed yet.
        """
        self._before_write(items, owners, touched)
        self._shadowed = shadowed
        # Readers index owners by the names in items: never publish a name in items before
        # its owner.  Additions publish owners first, removals items first, and a write that
        # does both (a reload) goes through the union of the two owner maps.
        if all(name in owners for name in touched):
            self._owners = owners
            self._items = items
        elif not any(name in owners for name in touched):
            self._items = items
            self._owners = owners
        else:
            self._owners = {**self._owners, **owners}
            self._items = items
            self._owners = owners
        self._version += 1
        self._after_write(touched)

    def _before_write(self, items: dict[str, T], owners: dict[str, str], touched: set[str]) -> None:
        """Hook: derive what a subclass indexes from the new snapshot, or refuse it by
        raising; nothing is published yet."""

    def _after_write(self, touched: set[str]) -> None:
        """Hook for subclasses that keep derived indexes; called under the write lock with
        the names whose entry was added, replaced or removed (so an index can be updated in
        proportion to the change, not to the registry's size)."""
