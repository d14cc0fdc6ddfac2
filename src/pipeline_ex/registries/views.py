"""Read-only views of the registries: what a running step receives.

A step used to get the registries themselves, so it could call ``register_providers`` under
any owner name and leave a provider behind that outlived the plugin that put it there.
Writes belong to the plugin manager (through the ComponentIntegrator), owned by a loaded
plugin; steps get these views instead:

- they have read methods only, and keep no attribute that leads to the registry (it is
  held in a closure), so ``context.providers.register_providers`` and
  ``context.providers._registry`` are ``AttributeError``;
- they cannot be changed either (``__slots__``, ``__setattr__`` refused), since one view is
  shared by every run of the registry's runtime;
- a provider view is bound to a run's mode and only sees the providers serving that mode.

In-process plugins are trusted code (a determined one can still walk a closure's cells or
the interpreter's objects); the views make the contract plain and stop accidents and casual
misuse, they are not a sandbox.  Views are built once per registry (and mode) and read the
registry's current snapshot on every call, so they never go stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from pipeline_ex.registries.providers import ProviderRegistry, Ranking
    from pipeline_ex.registries.steps import StepRegistry


class _Frozen:
    """Refuses attribute writes: a view is shared, so nobody may repoint it."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is read-only (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is read-only (cannot delete {name!r})")


class ProviderView(_Frozen):
    """The providers serving one mode of run, ranked as ``ProviderRegistry`` documents.

    ``get(name)``/``view[name]`` return a provider of this mode (a provider of the other
    mode is an ``UnknownProviderError`` saying so), ``capabilities(name)`` its capability
    set, ``select``/``select_name``/``select_all`` choose by capabilities, and ``in``,
    ``iter`` (best first) and ``len`` cover the providers of this mode.
    """

    __slots__ = ("__mode", "__ranking")
    __mode: str
    __ranking: Callable[[], Ranking]

    def __init__(self, registry: ProviderRegistry, mode: str) -> None:
        def ranking() -> Ranking:
            return registry.ranking(mode)

        object.__setattr__(self, "_ProviderView__ranking", ranking)
        object.__setattr__(self, "_ProviderView__mode", mode)

    @property
    def mode(self) -> str:
        """The mode of run whose providers this view shows."""
        return self.__mode

    def get(self, name: str) -> Any:
        ranking = self.__ranking()
        try:
            return ranking.visible[name]
        except KeyError:
            raise ranking.missing(name) from None

    __getitem__ = get

    def capabilities(self, name: str) -> frozenset[str]:
        ranking = self.__ranking()
        try:
            return ranking.offered[name]
        except KeyError:
            raise ranking.missing(name) from None

    def select_name(self, capabilities: Iterable[str]) -> str:
        ranking = self.__ranking()
        wanted = frozenset(capabilities)
        names = ranking.ranked_names(wanted)
        if not names:
            raise ranking.no_match(wanted)
        return names[0]

    def select(self, capabilities: Iterable[str]) -> Any:
        ranking = self.__ranking()
        wanted = frozenset(capabilities)
        names = ranking.ranked_names(wanted)
        if not names:
            raise ranking.no_match(wanted)
        return ranking.visible[names[0]]

    def select_all(self, capabilities: Iterable[str]) -> list[Any]:
        """Every provider of this mode offering all ``capabilities``, best first ([] if none)."""
        ranking = self.__ranking()
        return [ranking.visible[n] for n in ranking.ranked_names(frozenset(capabilities))]

    def __contains__(self, name: object) -> bool:
        return name in self.__ranking().visible

    def __iter__(self) -> Iterator[str]:
        return iter(self.__ranking().names)

    def __len__(self) -> int:
        return len(self.__ranking().names)

    def __repr__(self) -> str:
        return f"<ProviderView mode={self.__mode!r} providers={list(self)}>"


class StepView(_Frozen):
    """The registered step types, read-only: ``get``/``[name]``, ``in``, ``iter``, ``len``."""

    __slots__ = ("__contains", "__get", "__names")
    __contains: Callable[[object], bool]
    __get: Callable[[str], Any]
    __names: Callable[[], list[str]]

    def __init__(self, registry: StepRegistry) -> None:
        def get(name: str) -> Any:
            return registry[name]

        def contains(name: object) -> bool:
            return name in registry

        def names() -> list[str]:
            return list(registry)

        object.__setattr__(self, "_StepView__get", get)
        object.__setattr__(self, "_StepView__contains", contains)
        object.__setattr__(self, "_StepView__names", names)

    def get(self, name: str) -> Any:
        return self.__get(name)

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return self.__contains(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__names())

    def __len__(self) -> int:
        return len(self.__names())

    def __repr__(self) -> str:
        return f"<StepView step_types={list(self)}>"
