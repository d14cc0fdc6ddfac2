"""The metrics seam: every call into plugin code is counted here, keyed by
``(plugin, kind, name)``.

``kind`` is one of ``KINDS``: ``lifecycle`` (import, init, get_*, terminate, health_check),
``step_type`` (a step's ``execute``), ``provider`` (a provider's ``query``),
``schema_extension`` (listed, never called: extensions are data) and ``hook`` (a step's or
provider's ``preflight``/``semantic_check``).  Keys are tuples, so a step type named
``init`` never shares counters with the plugin's ``init`` call.

Exact under concurrency without a lock on the hot path: each ``Cell`` (one key) keeps one
*shard* per thread, a plain list only that thread writes (``[sum_ns, bucket counts...]``),
found through a ``threading.local``; readers add the shards up.  Measured with callgrind
against a ``threading.Lock`` around the same two increments, the lock cost twice as many
instructions as the thread-local lookup.  Errors (the rare path) are counted under the
cell's lock, with their code.  Shards of threads that have ended are folded into the cell's
base on read, so a server starting a thread per request does not grow them without bound.

Observers (Prometheus, tracing, the status page) read ``Metrics``, never the guard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from pipeline_ex.monitoring.histogram import BUCKETS, quantile_ms

KINDS = ("lifecycle", "step_type", "provider", "schema_extension", "hook")

#: What the guard's callers use for timing: integer nanoseconds (exact sums, and the
#: bucket is ``elapsed.bit_length()``).
clock_ns = time.perf_counter_ns

#: Shard layout: ``[sum_ns, bucket 0, ..., bucket 63]``; a call's bucket slot is
#: ``elapsed.bit_length() + 1``.
_SHARD = BUCKETS + 1


class ComponentKey(NamedTuple):
    plugin: str
    kind: str
    name: str


class CellReading(NamedTuple):
    """One cell's counters at one moment (a plain copy)."""

    key: ComponentKey
    calls: int
    errors: int
    errors_by_code: dict[str, int]
    sum_ns: int
    buckets: tuple[int, ...]
    last_error: str | None

    @property
    def p50_ms(self) -> float | None:
        return quantile_ms(self.buckets, 0.5)

    @property
    def p99_ms(self) -> float | None:
        return quantile_ms(self.buckets, 0.99)


class Cell:
    """Counters of one component (see the module doc for the sharding)."""

    __slots__ = ("_base", "_errors", "_last_error", "_lock", "_shards", "key", "local")

    def __init__(self, key: ComponentKey) -> None:
        self.key = key
        #: ``local.s`` is the calling thread's shard (AttributeError until it has one).
        self.local = threading.local()
        self._shards: list[tuple[threading.Thread, list[int]]] = []
        self._base = [0] * _SHARD
        self._errors: dict[str, int] = {}
        self._last_error: str | None = None
        self._lock = threading.Lock()

    def shard(self) -> list[int]:
        """This thread's shard, created on its first call."""
        try:
            shard: list[int] = self.local.s
        except AttributeError:
            shard = [0] * _SHARD
            with self._lock:
                self._shards.append((threading.current_thread(), shard))
            self.local.s = shard
        return shard

    def record(self, elapsed_ns: int) -> None:
        """Count one call (its errors, if any, through ``error``)."""
        shard = self.shard()
        shard[0] += elapsed_ns
        shard[elapsed_ns.bit_length() + 1] += 1

    def error(self, code: str, message: str | None) -> None:
        with self._lock:
            self._errors[code] = self._errors.get(code, 0) + 1
            if message is not None:
                self._last_error = message

    def read(self) -> CellReading:
        with self._lock:
            live: list[tuple[threading.Thread, list[int]]] = []
            total = list(self._base)
            for thread, shard in self._shards:
                values = list(shard)  # one atomic copy of the shard
                if thread.is_alive():
                    live.append((thread, shard))
                else:  # nobody writes it any more: fold it into the base
                    for index, value in enumerate(values):
                        self._base[index] += value
                for index, value in enumerate(values):
                    total[index] += value
            self._shards = live
            errors = dict(self._errors)
            last = self._last_error
        buckets = tuple(total[1:])
        return CellReading(
            self.key, sum(buckets), sum(errors.values()), errors, total[0], buckets, last
        )


class Metrics:
    """All cells of one Runtime, plus what else the seam counts: loads (with their time)
    and the observers of per-call events.

    ``enabled=False`` makes the guard build callers that count nothing (the benchmark's
    "metrics off" row); lifecycle calls are still counted (they are rare and the plugin
    records depend on them).
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._cells: dict[ComponentKey, Cell] = {}
        self._lock = threading.Lock()
        self._loads: dict[str, list[float]] = {}
        #: Per-call tracers (``CallTracer``); the guard's callers check this list is empty.
        self.tracers: list[CallTracer] = []
        #: The latest error message counted for each plugin (any of its cells).
        self.last_errors: dict[str, str] = {}

    def cell(self, plugin: str, kind: str, name: str) -> Cell:
        key = ComponentKey(plugin, kind, name)
        cell = self._cells.get(key)
        if cell is None:
            with self._lock:
                cell = self._cells.get(key)
                if cell is None:
                    cell = Cell(key)
                    cells = dict(self._cells)
                    cells[key] = cell
                    self._cells = cells  # readers iterate a dict nobody changes
        return cell

    def cells(self, plugin: str | None = None) -> Iterator[Cell]:
        for key, cell in self._cells.items():
            if plugin is None or key.plugin == plugin:
                yield cell

    def read(self, plugin: str | None = None) -> list[CellReading]:
        return [cell.read() for cell in self.cells(plugin)]

    def record_load(self, plugin: str, seconds: float) -> None:
        """A successful load (or reload) of ``plugin`` that took ``seconds``."""
        with self._lock:
            entry = self._loads.setdefault(plugin, [0, 0.0])
            entry[0] += 1
            entry[1] = seconds

    def loads(self, plugin: str) -> tuple[int, float | None]:
        """How many times ``plugin`` loaded, and how long the last load took."""
        entry = self._loads.get(plugin)
        return (0, None) if entry is None else (int(entry[0]), float(entry[1]))

    def totals(self, plugin: str) -> tuple[int, int]:
        """``(calls, errors)`` of every cell of ``plugin``."""
        calls = errors = 0
        for reading in self.read(plugin):
            calls += reading.calls
            errors += reading.errors
        return calls, errors


class CallTracer:
    """What a per-call observer implements (tracing): ``start`` before plugin code runs,
    ``end`` with the token ``start`` returned once it has returned or raised."""

    def start(self, key: ComponentKey) -> Any:
        raise NotImplementedError

    def end(self, token: Any, error: BaseException | None) -> None:
        raise NotImplementedError


def error_code(exc: BaseException) -> str:
    """The stable code of what a plugin call raised: a pipeline-ex error's own ``code``,
    else ``crashed``."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else "crashed"
