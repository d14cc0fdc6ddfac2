"""What one run may use: steps, result bytes and extra threads, each with a typed error.

A workflow is untrusted, and the step budget alone left two ways to exhaust the machine
inside it: results (a ``for_loop`` over half a million items each returning a megabyte of
text keeps all of it) and threads (three nested parallel loops at ``max_parallel: 32``
started 15,552 of them).  ``RunLimits`` holds the three limits; ``Executor.limits`` (and so
``runtime.executor.limits``) sets them for every run of that executor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_ex.errors import PipelineExError
from pipeline_ex.results_json import MAX_DEPTH, ResultEncodingError

#: Most steps one run may execute, loop iterations included.
MAX_STEPS_PER_RUN = 100_000
#: Estimated bytes of results one run may keep (see ``measure``).
MAX_RESULT_BYTES_PER_RUN = 256 * 1024 * 1024
#: Threads one run may add to the calling thread, shared by every parallel section in it.
MAX_EXTRA_THREADS_PER_RUN = 32


@dataclass(frozen=True)
class RunLimits:
    max_steps: int = MAX_STEPS_PER_RUN
    max_result_bytes: int = MAX_RESULT_BYTES_PER_RUN
    max_extra_threads: int = MAX_EXTRA_THREADS_PER_RUN


class ResultBudgetExceeded(PipelineExError):
    code = "result_budget_exceeded"


_SCALAR = 8  # a number, a boolean, None; also what a slot in a container costs
_CONTAINER = 56  # an empty list or mapping
_OBJECT = 64  # anything else a plugin returned (written out as its text)


_EXACT_SCALARS = frozenset({int, float, bool, type(None)})
_EXACT_CONTAINERS = frozenset({dict, list, tuple})


def _leaf_size(value: Any) -> int | None:
    """Size of a value that holds no others; ``None`` for containers."""
    kind = type(value)  # exact types first: this runs for every value of every result
    if kind is str:
        return 49 + len(value)
    if kind in _EXACT_SCALARS:
        return _SCALAR
    if kind in _EXACT_CONTAINERS:
        return None
    if isinstance(value, str | bytes | bytearray):
        return 49 + len(value)
    if isinstance(value, Mapping | list | tuple):
        return None
    if value is None or isinstance(value, int | float | bool):
        return _SCALAR
    return _OBJECT


def _children(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [*value.keys(), *value.values()]
    return list(value)


def measure(value: Any, known: Mapping[int, tuple[Any, int, int]] | None = None) -> tuple[int, int]:
    """``(new bytes, depth)`` of ``value``, estimated and without recursion.

    A container counts once per place it appears (as JSON output would), computed once per
    object, so ``[[s] * 1000] * 1000`` is weighed without being walked a million times.
    Subtrees listed in ``known`` (``id -> (object, bytes, depth)``: results already paid
    for) count for their depth but no bytes: a loop's result holding its iterations' results
    does not pay for them twice.  A value deeper than ``MAX_DEPTH`` or containing itself
    raises ``ResultEncodingError``: nothing could write it out.
    """
    known = known or {}
    if type(value) is dict and id(value) not in known:
        # Most results: one flat mapping of text and scalars (a provider's reply), weighed
        # inline, without a call per key and value.
        total = _CONTAINER + 2 * _SCALAR * len(value)
        for key, item in value.items():
            kind = type(key)
            if kind is str:
                total += 49 + len(key)
            elif kind in _EXACT_SCALARS:
                total += _SCALAR
            else:
                break
            kind = type(item)
            if kind is str:
                total += 49 + len(item)
            elif kind in _EXACT_SCALARS:
                total += _SCALAR
            else:
                break
        else:
            return total, 0
    leaf = _leaf_size(value)
    if leaf is not None:
        return leaf, 0
    if id(value) not in known:  # a flat list, or a flat mapping of another type
        total = _CONTAINER
        for child in _children(value):
            size = _leaf_size(child)
            if size is None:
                break
            total += size + _SCALAR
        else:
            return total, 0
    sizes: dict[int, tuple[int, int]] = {}
    path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            path.discard(key)
            total, depth = _CONTAINER, 0
            for child in _children(node):
                size = _leaf_size(child)
                if size is None:
                    size, child_depth = sizes[id(child)]
                    depth = max(depth, child_depth + 1)
                total += size + _SCALAR
            sizes[key] = (total, depth)
            continue
        if key in sizes:
            continue
        paid = known.get(key)
        if paid is not None and paid[0] is node:
            sizes[key] = (0, paid[2])
            continue
        if key in path:
            raise ResultEncodingError("result contains itself; it cannot be written as JSON")
        if len(path) >= MAX_DEPTH:
            raise ResultEncodingError(
                f"result nested deeper than {MAX_DEPTH} levels; it cannot be written as JSON"
            )
        path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if _leaf_size(c) is None)
    total, depth = sizes[id(value)]
    if depth > MAX_DEPTH:
        raise ResultEncodingError(
            f"result nested deeper than {MAX_DEPTH} levels; it cannot be written as JSON"
        )
    return total, depth


class ResultBudget:
    """Estimated bytes of results one run keeps, shared by every context (and thread)."""

    def __init__(self, limit: int = MAX_RESULT_BYTES_PER_RUN) -> None:
        self.limit = limit
        self.used = 0
        self._paid: dict[int, tuple[Any, int, int]] = {}
        self._lock = threading.Lock()

    def _exceeded(self, what: str, size: int) -> ResultBudgetExceeded:
        return ResultBudgetExceeded(
            f"{what} (~{size:,} bytes) would take the run past its result budget of "
            f"{self.limit:,} bytes ({self.used:,} used); refused"
        )

    def charge(self, result: Any) -> None:
        """Pay for a recorded result, or raise ``ResultBudgetExceeded`` (nothing paid)."""
        size, depth = measure(result, self._paid)
        with self._lock:
            if self.used + size > self.limit:
                raise self._exceeded("this result", size)
            self.used += size
            if type(result) is dict or _leaf_size(result) is None:
                self._paid[id(result)] = (result, size, depth)

    def allowance(self, what: str) -> Callable[[Any], None]:
        """A ``charge(value)`` for a value being built piece by piece (a step's templated
        definition): it adds up the pieces and raises ``ResultBudgetExceeded`` as soon as
        they could not be kept within what the run has left, before the rest is built.
        Nothing is paid: what the step returns is paid for when it is recorded."""
        spent = 0

        def charge(value: Any) -> None:
            nonlocal spent
            size, _ = measure(value, self._paid)
            spent += size
            if self.used + spent > self.limit:
                raise self._exceeded(what, spent)

        return charge
