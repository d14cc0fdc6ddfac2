"""The metrics seam: every call into plugin code is counted here, keyed by
``(plugin, kind, name)``.

``kind`` is one of ``KINDS``: ``lifecycle`` (import, init, get_*, terminate, health_check),
``step_type`` (a step's ``execute``), ``provider`` (a provider's ``query``),
``schema_extension`` (listed, never called: extensions are data) and ``hook`` (a step's or
provider's ``preflight``/``semantic_check``).  Keys are tuples, so a step type named
``init`` never shares counters with the plugin's ``init`` call.

Exact under concurrency without a lock on the hot path.  Each bound caller has a
``Meter``: a *shard* ``[sum_ns, started, bucket counts...]`` of plain ints that the caller
updates with ``shard[i] += n`` statements; readers copy it with ``list(shard)`` (atomic).
``started`` doubles as the plugin version's in-flight count (``Lease``), so a dispatch
pays for one counting mechanism, not two.  Errors (the rare path) are counted under the
cell's lock, with their code.

How the shard stays exact was measured (callgrind, instructions per dispatch of the
wrapper around a trivial step, against pluggy's ~16,000 for a hook call):

- on CPython with the GIL (3.11 to 3.13), one shared shard: ``lst[i] += n`` on a list of
  ints has no point where the interpreter may switch threads (the eval breaker is checked
  at calls, function entry and backward jumps, none of which the statement contains), so
  no increment is lost; ``tests/monitoring/test_metrics.py`` hammers it from 8 threads
  with a 1 µs switch interval.  Cost over the previous (unexact) counters: ~300-500;
- per-thread shards found through a ``threading.local`` (merged on read): ~940, a third
  more than the whole previous wrapper, which put the dispatch goal (<= 0.25x pluggy) out
  of reach on a loaded machine; a ``threading.Lock`` around the increments: ~2,500.

So ``SHARED_SHARD`` picks the first where it holds, and free-threaded builds
(``sys._is_gil_enabled()`` false), or another interpreter, get per-thread shards; shards
of threads that have ended are folded into a base on read, so a server starting a thread
per request does not grow them without bound.

Observers (Prometheus, tracing, the status page) read ``Metrics``, never the guard.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

from pipeline_ex.monitoring.histogram import BUCKETS, quantile_ms

KINDS = ("lifecycle", "step_type", "provider", "schema_extension", "hook")

#: What the guard's callers use for timing: integer nanoseconds (exact sums, and the
#: bucket is ``elapsed.bit_length()``).
clock_ns = time.perf_counter_ns

#: Shard layout: ``[sum_ns, started, bucket 0, ..., bucket 63]``; a finished call's bucket
#: slot is ``elapsed.bit_length() + 2``, so finished calls are the sum of the buckets and
#: calls in flight are ``started`` minus that.
SUM, STARTED, FIRST_BUCKET = 0, 1, 2
_SHARD = BUCKETS + 2


#: Lifecycle calls noted before they are counted into cells anyway (``Metrics.lifecycle``).
_TIMINGS_LIMIT = 4096

#: One shared shard per meter is exact here (see the module doc).
SHARED_SHARD = sys.implementation.name == "cpython" and bool(
    getattr(sys, "_is_gil_enabled", lambda: True)()
)


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
    #: False when the Runtime runs with ``metrics=False``: calls are counted, not timed.
    timed: bool = True

    @property
    def p50_ms(self) -> float | None:
        return quantile_ms(self.buckets, 0.5) if self.timed else None

    @property
    def p99_ms(self) -> float | None:
        return quantile_ms(self.buckets, 0.99) if self.timed else None


class _NoLock:
    """A meter with a shared shard has no shard list to guard."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


class Meter:
    """The counters of one bound caller (one version of one component): per-thread shards
    (module doc).  It also answers how many of its calls are in flight, which is what a
    plugin version's ``Lease`` waits on before the version is terminated."""

    __slots__ = ("_base", "_lock", "_shards", "cell", "local", "shared")

    def __init__(self, *, shared: bool = SHARED_SHARD, cell: Cell | None = None) -> None:
        #: The cell that reads this meter (``finish`` hands the counts over to it).
        self.cell = cell
        #: The one shard every thread updates, when that is exact (``SHARED_SHARD``).
        self.shared: list[int] | None = [0] * _SHARD if shared else None
        #: Otherwise ``local.s`` is the calling thread's shard (AttributeError until it
        #: has one); ``None`` with a shared shard.  The per-thread bookkeeping exists only
        #: then: every lifecycle call of every plugin load makes a cell with a meter, and
        #: two unused 66-slot lists each were a fifth of what a load cost the host.
        if shared:
            self.local: threading.local | None = None
            self._lock: Any = _NO_LOCK
        else:
            self.local = threading.local()
            self._shards: list[tuple[threading.Thread, list[int]]] = []
            self._base = [0] * _SHARD
            self._lock = threading.Lock()

    def shard(self) -> list[int]:
        """The shard the calling thread updates (its own one is created on first use)."""
        if self.shared is not None:
            return self.shared
        local = self.local
        assert local is not None
        try:
            shard: list[int] = local.s
        except AttributeError:
            shard = [0] * _SHARD
            with self._lock:
                self._shards.append((threading.current_thread(), shard))
            local.s = shard
        return shard

    def totals(self) -> list[int]:
        """All shards added up (``list(shard)`` copies each one atomically); shards of
        threads that ended are folded into the base and dropped."""
        if self.shared is not None:
            return list(self.shared)
        with self._lock:
            live: list[tuple[threading.Thread, list[int]]] = []
            total = list(self._base)
            for thread, shard in self._shards:
                values = list(shard)
                if thread.is_alive():
                    live.append((thread, shard))
                else:  # nobody writes it any more
                    self._base = _added(self._base, values)
                total = _added(total, values)
            self._shards = live
        return total

    def in_flight(self) -> int:
        """Calls started and not finished.  Asked by a drain after the version was
        retired: a call that starts after this read sees the retirement and never runs."""
        total = self.shared if self.shared is not None else self.totals()
        if not total[STARTED]:
            return 0
        # finished first, then started (a slice is one atomic copy): never an undercount
        finished = sum(total[FIRST_BUCKET:])
        return total[STARTED] - finished

    def finish(self) -> None:
        """No call will count here again (its plugin version was retired and drained):
        the cell keeps the counts and lets the meter go, so load/unload and reload cycles
        do not grow the metrics."""
        if self.cell is not None:
            self.cell.fold(self)


class Cell:
    """Counters of one component key: the meters of its bound callers (one per loaded
    version) and its own (for calls the guard times itself), errors under a lock.

    Cheap to make (a load makes one per lifecycle call of every plugin): the totals of
    finished meters and the error counts exist only once there is something to keep."""

    __slots__ = ("_errors", "_folded", "_last_error", "_lock", "_meters", "_own", "key", "timed")

    def __init__(self, key: ComponentKey, *, timed: bool = True) -> None:
        self.key = key
        self.timed = timed
        self._own = Meter()
        self._meters: list[Meter] = [self._own]
        self._folded: list[int] | None = None  # the totals of finished meters
        self._errors: dict[str, int] | None = None
        self._last_error: str | None = None
        self._lock = threading.Lock()

    def meter(self) -> Meter:
        """A new meter for a newly bound caller of this component."""
        meter = Meter(cell=self)
        with self._lock:
            self._meters = [*self._meters, meter]
        return meter

    def fold(self, meter: Meter) -> None:
        """Keep a finished meter's counts in the cell's base and drop the meter."""
        values = meter.totals()
        with self._lock:
            if values[STARTED]:  # most versions of most components were never called
                folded = self._folded
                self._folded = values if folded is None else _added(folded, values)
            self._meters = [m for m in self._meters if m is not meter]

    def record(self, elapsed_ns: int) -> None:
        """Count one finished call (its errors, if any, through ``error``)."""
        shard = self._own.shard()
        shard[STARTED] += 1
        shard[SUM] += elapsed_ns
        shard[elapsed_ns.bit_length() + FIRST_BUCKET] += 1

    def error(self, code: str, message: str | None) -> None:
        with self._lock:
            errors = self._errors
            if errors is None:
                errors = self._errors = {}
            errors[code] = errors.get(code, 0) + 1
            if message is not None:
                self._last_error = message

    def read(self) -> CellReading:
        with self._lock:
            total = self._folded if self._folded is not None else _ZEROS
            for meter in self._meters:
                total = _added(total, meter.totals())
            errors = dict(self._errors) if self._errors is not None else {}
            last = self._last_error
        buckets = tuple(total[FIRST_BUCKET:])
        return CellReading(
            self.key,
            sum(buckets),
            sum(errors.values()),
            errors,
            total[SUM],
            buckets,
            last,
            self.timed,
        )


#: An empty shard, never written (the start of a sum).
_ZEROS = [0] * _SHARD


def _added(left: list[int], right: list[int]) -> list[int]:
    """Element-wise sum of two shards (a new list)."""
    return [a + b for a, b in zip(left, right, strict=True)]


class Metrics:
    """All cells of one Runtime, plus what else the seam counts: loads (with their time)
    and the observers of per-call events.

    ``enabled=False`` makes the guard build callers that count nothing (the benchmark's
    "metrics off" row); lifecycle calls are still counted (they are rare and the plugin
    records depend on them).
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._cells: dict[tuple[str, str, str], Cell] = {}
        self._lock = threading.Lock()
        self._loads: dict[str, list[float]] = {}
        #: Per-call tracers (``CallTracer``); the guard's callers check this list is empty.
        self.tracers: list[CallTracer] = []
        #: The latest error message counted for each plugin (any of its cells).
        self.last_errors: dict[str, str] = {}
        #: Lifecycle calls that returned, not yet counted into their cells (``lifecycle``).
        self._timings: deque[tuple[str, str, int]] = deque()
        self._settling = threading.Lock()

    def lifecycle(self, plugin: str, operation: str, elapsed_ns: int) -> None:
        """A lifecycle call of ``plugin`` (``init``, ``get_metadata``, ...) returned after
        ``elapsed_ns``.

        Noted now, counted into its cell when somebody reads the metrics (or once many
        are waiting): a load makes eight such calls per plugin, and making eight cells
        for each on the load path was most of what the guard cost a plugin load, while a
        command that runs a workflow and exits never reads them.  ``deque.append`` and
        ``popleft`` are atomic, so a call noted while a reader counts is never lost.
        Failed calls go straight to their cell (``Guard.invoke``)."""
        timings = self._timings
        timings.append((plugin, operation, elapsed_ns))
        if len(timings) > _TIMINGS_LIMIT:
            self._settle()

    def _settle(self) -> None:
        """Count the noted lifecycle calls into their cells.  Under a lock that every
        reader takes too: a call taken off the queue is in its cell before anybody reads
        (without it, a reader finding the queue empty while another thread was between
        ``popleft`` and ``record`` read a count one short)."""
        timings = self._timings
        with self._settling:
            while timings:
                plugin, operation, elapsed_ns = timings.popleft()
                self._cell(plugin, "lifecycle", operation).record(elapsed_ns)

    def cell(self, plugin: str, kind: str, name: str) -> Cell:
        if kind == "lifecycle":
            self._settle()
        return self._cell(plugin, kind, name)

    def _cell(self, plugin: str, kind: str, name: str) -> Cell:
        cell = self._cells.get((plugin, kind, name))
        if cell is None:
            key = ComponentKey(plugin, kind, name)
            with self._lock:
                cell = self._cells.get(key)
                if cell is None:
                    cell = Cell(key, timed=self.enabled)
                    # In place: a copy per new cell made loading 100 plugins (ten cells
                    # each) quadratic.  Readers iterate a snapshot (``cells``).
                    self._cells[key] = cell
        return cell

    def cells(self, plugin: str | None = None) -> Iterator[Cell]:
        self._settle()
        # tuple() of a dict's items is one C call under the GIL: never torn by a writer.
        for key, cell in tuple(self._cells.items()):
            if plugin is None or key[0] == plugin:
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

    def totals(self, plugin: str, kinds: tuple[str, ...] = KINDS) -> tuple[int, int]:
        """``(calls, errors)`` of the cells of ``plugin`` of these ``kinds``."""
        calls = errors = 0
        for cell in self.cells(plugin):
            if cell.key.kind in kinds:
                reading = cell.read()
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
