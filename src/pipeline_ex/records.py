"""Immutable records for the plugin-loading path, without ``dataclasses``' start-up cost.

A ``@dataclass`` compiles its ``__init__``, ``__repr__``, ``__eq__`` (and, frozen,
``__setattr__``, ``__delattr__``, ``__hash__``) from generated source when its module is
imported: ~0.5 ms per class on the development machine, and importing ``dataclasses``
pulls in ``inspect`` (``ast``, ``dis``, ``tokenize``): ~7 ms more.  Loading plugins
touched seventeen such classes, ~16 ms of a ~36 ms import, which put a cold "import and
load 100 plugins" at 1.4x stevedore's.  The records on that path are written out instead:
each class spells its ``__slots__`` and its typed ``__init__`` (what ``mypy`` and readers
see), and this base gives them the rest of what ``@dataclass(frozen=True)`` gave.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

#: ``object.__setattr__``: how a record's ``__init__`` sets its (otherwise read-only) fields.
put = object.__setattr__


class _Fielded:
    """What both kinds of record share: ``FIELDS`` in ``__init__`` order, shown by
    ``repr`` and matched positionally by ``match`` patterns."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        setattr(cls, "__match_args__", cls.FIELDS)  # noqa: B010 - mypy cannot see it

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__qualname__}({shown})"


class Record(_Fielded):
    """Base of an immutable record: ``FIELDS`` in ``__init__`` order (``repr``, ``replace``,
    pickling and copying, ``match`` patterns use them all); equality and hash over
    ``COMPARED`` (by default every field), like a frozen dataclass whose other fields say
    ``compare=False``."""

    __slots__ = ()
    COMPARED: ClassVar[tuple[str, ...] | None] = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickle and copy rebuild through __init__: the default path sets attributes,
        # which an immutable record refuses
        return type(self), tuple(getattr(self, name) for name in self.FIELDS)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def _compared(self) -> tuple[Any, ...]:
        names = self.COMPARED if self.COMPARED is not None else self.FIELDS
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (``dataclasses.replace``); unknown names are refused."""
        unknown = set(changes) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        values = {name: getattr(self, name) for name in self.FIELDS}
        values.update(changes)
        return type(self)(**values)


class MutableRecord(_Fielded):
    """Base of a mutable record (a dataclass without ``frozen``): ``repr`` and equality
    over ``FIELDS``; not hashable."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.FIELDS)
