"""The one place where the host calls plugin code.

Every lifecycle call (import, metadata, init, get_*, terminate, health_check) goes
through the guard: exceptions become ``PluginError`` with a code, time is measured, calls
and errors are counted per plugin and component.  Lifecycle calls run on a helper thread
and are held to a deadline, so a plugin that hangs costs a ``timeout`` error, not the host:
``call`` for a single call (pooled helper threads), ``supervise`` + ``watched`` for a batch
of them (one helper, no hand-off per call).  A step type's ``execute`` is wrapped once by
``bind`` at registration: no thread, just timing and counting, because it is on every
step's path.
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pipeline_ex.errors import PluginError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0

#: Idle helper threads kept per guard; more are started when calls overlap.
MAX_IDLE_WORKERS = 4

_in_worker = threading.local()
_clock = time.perf_counter


class CallStats:
    """Counters for one plugin, kept per component as ``[calls, seconds, errors]``.

    Plain numbers updated under the GIL (no lock on the hot path, so concurrent updates
    may rarely lose a count).  The plugin's totals are derived from the components, so a
    dispatch updates one small list and nothing else.
    """

    __slots__ = ("last_error", "per_component")

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.per_component: dict[str, list[Any]] = {}

    def entry(self, component: str) -> list[Any]:
        """The live ``[calls, seconds, errors]`` list of ``component`` (created if new)."""
        counters = self.per_component.get(component)
        if counters is None:
            counters = self.per_component.setdefault(component, [0, 0.0, 0])
        return counters

    def _total(self, index: int) -> Any:
        return sum(counters[index] for counters in list(self.per_component.values()))

    @property
    def calls(self) -> int:
        return int(self._total(0))

    @property
    def total_seconds(self) -> float:
        return float(self._total(1))

    @property
    def errors(self) -> int:
        return int(self._total(2))

    def record(self, component: str, seconds: float, failed: bool) -> None:
        counters = self.entry(component)
        counters[0] += 1
        counters[1] += seconds
        if failed:
            counters[2] += 1

    def as_dict(self) -> dict[str, Any]:
        components = list(self.per_component.items())
        return {
            "calls": sum(int(c) for _, (c, _t, _e) in components),
            "errors": sum(int(e) for _, (_c, _t, e) in components),
            "total_seconds": round(sum(t for _, (_c, t, _e) in components), 6),
            "last_error": self.last_error,
            "components": {
                name: {
                    "calls": int(c),
                    "errors": int(e),
                    "mean_ms": round(1000 * t / c, 4) if c else 0.0,
                }
                for name, (c, t, e) in components
            },
        }


class Guard:
    """Catches, times and counts every call into plugin code."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.stats: dict[str, CallStats] = {}
        self._workers = _WorkerPool()

    def stats_for(self, plugin: str) -> CallStats:
        stats = self.stats.get(plugin)
        if stats is None:
            stats = self.stats.setdefault(plugin, CallStats())
        return stats

    def invoke(
        self, plugin: str, operation: str, fn: Callable[..., Any], *args: Any, code: str = "crashed"
    ) -> Any:
        """Call plugin code on this thread; any exception becomes ``PluginError(code)``."""
        stats = self.stats_for(plugin)
        started = time.perf_counter()
        try:
            result = fn(*args)
        except PluginError as exc:
            stats.record(operation, time.perf_counter() - started, True)
            stats.last_error = f"{operation}: {exc.message}"
            raise
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit crashed, no more
            stats.record(operation, time.perf_counter() - started, True)
            stats.last_error = f"{operation}: {type(exc).__name__}: {exc}"
            logger.warning(
                "plugin %s: %s raised %r", plugin, operation, exc, extra={"plugin": plugin}
            )
            raise PluginError(
                f"plugin {plugin!r}: {operation} raised {type(exc).__name__}: {exc}",
                code=code,
                plugin=plugin,
            ) from exc
        stats.record(operation, time.perf_counter() - started, False)
        return result

    def call(
        self,
        plugin: str,
        operation: str,
        fn: Callable[..., Any],
        *args: Any,
        code: str = "crashed",
        timeout: float | None = None,
    ) -> Any:
        """``invoke`` on a helper thread with a deadline: a hang becomes ``timeout``.

        Helper threads are pooled (see ``_Worker``): starting a thread per call cost
        ~45 us at the median and up to 4 ms at p99 on a busy 2-core machine, and the
        manager makes one call per plugin load and one per unload.  A worker whose call
        overruns its deadline is abandoned to finish (or hang) on its own; the next call
        gets another worker.  A ``call`` made from inside a guarded call runs inline, under
        the outer call's deadline.
        """
        deadline = self.timeout if timeout is None else timeout
        if getattr(_in_worker, "active", False):
            return self.invoke(plugin, operation, fn, *args, code=code)
        task = _Task(self, plugin, operation, fn, args, code)
        self._workers.submit(task, f"plugin:{plugin}:{operation}")
        if not task.done.acquire(timeout=deadline):
            raise self._timed_out(plugin, operation, deadline)
        if task.failure is not None:
            raise task.failure
        return task.outcome

    def supervise(
        self,
        items: Sequence[T],
        work: Callable[[T], Any],
        *,
        on_timeout: Callable[[T, PluginError], None] | None = None,
    ) -> list[Any]:
        """Run ``work(item)`` for each item, in order, on a helper thread, and return each
        outcome (the value, or the ``PluginError`` it raised).

        Plugin calls made inside ``work`` through ``watched`` keep their own deadlines, but
        no thread hand-off per call: this (the calling) thread sleeps until the batch is
        done or the running call's deadline passes.  A call that overruns is that item's
        ``timeout`` outcome; ``on_timeout`` runs here, and the remaining items go on in a
        fresh worker while the stuck one is abandoned (and unwinds if it ever returns).
        Loading a hundred plugins costs two thread switches instead of two hundred.
        """
        outcomes: list[Any] = []
        while len(outcomes) < len(items):
            start = len(outcomes)
            sup = _Supervision()

            def run_batch(first: int = start, sup: _Supervision = sup) -> None:
                _supervision.current = sup
                try:
                    for item in items[first:]:
                        try:
                            outcome: Any = work(item)
                        except PluginError as exc:
                            outcome = exc
                        except (Exception, SystemExit) as exc:
                            # Host code handling this item failed (a bug, or a plugin object
                            # misbehaving outside a watched call): that item fails, the batch
                            # goes on.
                            logger.exception("supervised work on %r failed", item)
                            outcome = PluginError(
                                f"{item!r}: {type(exc).__name__}: {exc}", code="crashed"
                            )
                        with sup.cond:
                            if sup.cancelled:
                                return
                            sup.outcomes.append(outcome)
                except Abandoned:
                    return
                except BaseException as exc:
                    sup.crash = exc
                finally:
                    _supervision.current = None
                with sup.cond:
                    sup.done = True
                    sup.cond.notify_all()

            worker = threading.Thread(target=run_batch, name="plugin:supervised", daemon=True)
            worker.start()
            overdue: tuple[str, str, float, float] | None = None
            with sup.cond:
                while not sup.done and sup.crash is None:
                    current = sup.current
                    now = _clock()
                    if current is not None and now >= current[3]:
                        sup.cancelled = True
                        overdue = current
                        break
                    # Wake at least every 50 ms: a call that starts after this check
                    # still meets its deadline within that slack.
                    remaining = current[3] - now if current is not None else self.timeout
                    sup.cond.wait(min(remaining, 0.05))
                outcomes.extend(sup.outcomes)
            if sup.crash is not None:
                raise sup.crash
            if overdue is None:
                break
            plugin, operation, started, deadline = overdue
            error = self._timed_out(plugin, operation, deadline - started)
            if on_timeout is not None:
                on_timeout(items[len(outcomes)], error)
            outcomes.append(error)
        return outcomes

    def _timed_out(self, plugin: str, operation: str, limit: float) -> PluginError:
        """Count an overrun call and describe it."""
        stats = self.stats_for(plugin)
        stats.record(operation, limit, True)
        stats.last_error = f"{operation} timed out after {limit:g}s"
        return PluginError(
            f"plugin {plugin!r}: {operation} did not return within {limit:g}s",
            code="timeout",
            plugin=plugin,
        )

    def watched(
        self,
        plugin: str,
        operation: str,
        fn: Callable[..., Any],
        *args: Any,
        code: str = "crashed",
        timeout: float | None = None,
    ) -> Any:
        """A plugin call under the deadline of the ``supervise`` batch it runs in (or, from
        anywhere else, ``call``)."""
        sup: _Supervision | None = getattr(_supervision, "current", None)
        if sup is None:
            return self.call(plugin, operation, fn, *args, code=code, timeout=timeout)
        started = _clock()
        limit = self.timeout if timeout is None else timeout
        with sup.cond:
            sup.current = (plugin, operation, started, started + limit)
        try:
            return self.invoke(plugin, operation, fn, *args, code=code)
        finally:
            with sup.cond:
                abandoned = sup.cancelled
                sup.current = None
            if abandoned:
                raise Abandoned

    def bind(
        self, owner: str, component: str, fn: Callable[[Any, Any], Any]
    ) -> Callable[[Any, Any], Any]:
        """A step's ``execute(step, context)`` wrapped once: the wrapper calls it, times it
        and counts it (errors too) into ``owner``'s counters for ``component``, with no
        lookups per call (~0.15 us; two fixed arguments are cheaper than ``*args``).
        """
        counters = self.stats_for(owner).entry(component)
        guard = self

        def guarded(step: Any, context: Any) -> Any:
            started = _clock()
            try:
                result = fn(step, context)
            except BaseException:
                counters[1] += _clock() - started
                counters[0] += 1
                counters[2] += 1
                guard.stats_for(owner).last_error = f"{component} raised"
                raise
            counters[1] += _clock() - started
            counters[0] += 1
            return result

        guarded.__qualname__ = guarded.__name__ = f"guarded[{owner}:{component}]"
        return guarded


class Abandoned(BaseException):
    """Unwinds a supervised worker whose plugin call overran: the host moved on without it.

    A ``BaseException`` so that no ``except Exception`` in host code can swallow it.
    """


class _Supervision:
    """What a supervising thread and its worker share: the plugin call now running (with
    its deadline), the outcomes so far, and whether the supervisor gave up on the worker."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.current: tuple[str, str, float, float] | None = None
        self.outcomes: list[Any] = []
        self.cancelled = False
        self.done = False
        self.crash: BaseException | None = None


_supervision = threading.local()


class _Task:
    """One guarded call handed to a worker; ``done`` is released when it has finished."""

    __slots__ = ("args", "code", "done", "failure", "fn", "guard", "operation", "outcome", "plugin")

    def __init__(
        self,
        guard: Guard,
        plugin: str,
        operation: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        code: str,
    ) -> None:
        self.guard = guard
        self.plugin = plugin
        self.operation = operation
        self.fn = fn
        self.args = args
        self.code = code
        self.outcome: Any = None
        self.failure: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.outcome = self.guard.invoke(
                self.plugin, self.operation, self.fn, *self.args, code=self.code
            )
        except BaseException as exc:
            self.failure = exc


class _Worker:
    """A daemon thread running tasks from its own queue, one at a time.

    It holds its pool only weakly: when the guard goes away, the pool's finalizer tells
    the idle workers to exit, so a discarded Runtime leaves no threads behind.
    """

    def __init__(self, pool: _WorkerPool) -> None:
        self.pool = weakref.ref(pool)
        self.pid = os.getpid()
        self.tasks: queue.SimpleQueue[tuple[_Task, str] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="plugin:idle", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        _in_worker.active = True
        me = threading.current_thread()
        while True:
            item = self.tasks.get()
            if item is None:
                return
            task, name = item
            me.name = name
            # A fresh context per call, as a new thread would have: no context variable
            # set by one plugin's call leaks into the next one run on this thread.
            contextvars.Context().run(task.run)
            me.name = "plugin:idle"
            pool = self.pool()
            keep = pool is not None and pool.give_back(self)
            del pool
            task.done.release()
            del task, item
            if not keep:
                return


def _stop_idle(idle: list[_Worker], lock: threading.Lock) -> None:
    with lock:
        for worker in idle:
            worker.tasks.put(None)
        idle.clear()


class _WorkerPool:
    """Idle workers of one guard.  A worker returns itself after each task (so one that
    overran a deadline comes back only if it ever finishes); extra idle ones exit."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _stop_idle, self._idle, self._lock)

    def submit(self, task: _Task, name: str) -> None:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None or worker.pid != os.getpid():  # none idle, or inherited by fork
            if worker is not None:
                with self._lock:
                    self._idle.clear()
            worker = _Worker(self)
        worker.tasks.put((task, name))

    def give_back(self, worker: _Worker) -> bool:
        with self._lock:
            if len(self._idle) >= MAX_IDLE_WORKERS:
                return False
            self._idle.append(worker)
            return True

    def close(self) -> None:
        """Let every idle worker exit (busy ones exit when they finish)."""
        _stop_idle(self._idle, self._lock)
