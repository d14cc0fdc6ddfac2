"""The one place where the host calls plugin code.

Every lifecycle call (import, metadata, init, get_*, terminate, health_check) goes
through the guard: exceptions become ``PluginError`` with a code, time is measured, calls
and errors are counted into the metrics seam (``pipeline_ex.monitoring.metrics``), keyed
by plugin, kind and name.  Lifecycle calls run on a helper thread
and are held to a deadline, so a plugin that hangs costs a ``timeout`` error, not the host:
``call`` for a single call (pooled helper threads), ``supervise`` + ``watched`` for a batch
of them (one helper, no hand-off per call).  A step type's ``execute`` is wrapped once by
``bind`` at registration: no thread, just timing, counting and a lease (see ``Lease``),
because it is on every step's path.

Whatever plugin code raises is that call's failure: any ``BaseException`` (``SystemExit``,
``KeyboardInterrupt`` raised by code, the guard's own ``Abandoned``, a custom subclass)
becomes a ``PluginError``; only the user's real Ctrl-C (see ``pipeline_ex.interrupts``)
passes through and stops the host.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pipeline_ex.errors import PipelineExError, PluginError
from pipeline_ex.interrupts import is_user_interrupt
from pipeline_ex.log import get_logger
from pipeline_ex.monitoring import log_context
from pipeline_ex.monitoring.metrics import (
    FIRST_BUCKET,
    STARTED,
    SUM,
    ComponentKey,
    Metrics,
    clock_ns,
    error_code,
)
from pipeline_ex.plugins.leases import Lease
from pipeline_ex.plugins.workers import Task, WorkerPool, in_worker

logger = get_logger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0


class Guard:
    """Catches, times and counts every call into plugin code."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, *, metrics: Metrics | None = None) -> None:
        self.timeout = timeout
        #: Per-plugin deadlines (a config entry's ``limits.call_timeout_s``); others get
        #: ``timeout``.
        self.timeouts: dict[str, float] = {}
        #: The seam every call is counted into (the Runtime's ``monitoring`` reads it).
        self.metrics = metrics if metrics is not None else Metrics()
        self._workers = WorkerPool()

    def close(self) -> None:
        """Let the pooled helper threads exit (the manager's ``shutdown``)."""
        self._workers.close()

    def timeout_for(self, plugin: str) -> float:
        return self.timeouts.get(plugin, self.timeout)

    def _failed(self, plugin: str, kind: str, name: str, code: str, message: str) -> None:
        """Count an error of ``(plugin, kind, name)`` and remember it as the plugin's last."""
        self.metrics.cell(plugin, kind, name).error(code, message)
        self.metrics.last_errors[plugin] = message

    def invoke(
        self,
        plugin: str,
        operation: str,
        fn: Callable[..., Any],
        *args: Any,
        code: str = "crashed",
        quiet: bool = False,
    ) -> Any:
        """Call plugin code on this thread; whatever it raises becomes ``PluginError(code)``.

        A ``PluginError`` the plugin raised itself keeps its message and code, except
        ``timeout``: only the guard (or the host side of an isolated plugin, whose errors
        are ``host_raised``) decides that a call timed out.  The formatted traceback
        travels on the error (``.traceback``) so that ``plugins info`` and ``-v`` can show it.
        A failure is logged as a warning unless ``quiet`` (an expected repeat, such as the
        next failing health check of a plugin already degraded by one): then at debug.
        """
        metrics = self.metrics
        token = log_context.enter_call(plugin, operation)
        traced = metrics.tracers and _trace_start(
            metrics, ComponentKey(plugin, "lifecycle", operation)
        )
        started = clock_ns()
        try:
            result = fn(*args)
        except BaseException as exc:
            if traced:
                _trace_end(traced, exc)
            failure = self._raised(plugin, operation, code, quiet, exc, started, token)
            if failure is exc:
                raise
            raise failure from exc
        metrics.lifecycle(plugin, operation, clock_ns() - started)
        log_context.leave_call(token)
        if traced:
            _trace_end(traced, None)
        return result

    def _raised(
        self,
        plugin: str,
        operation: str,
        code: str,
        quiet: bool,
        exc: BaseException,
        started: int,
        token: Any,
    ) -> BaseException:
        """What a lifecycle call that raised ``exc`` ends with (the caller raises it):
        counted and logged, and turned into a ``PluginError`` unless it is one already (or
        the user's Ctrl-C, which goes on as it is)."""
        cell = self.metrics.cell(plugin, "lifecycle", operation)
        cell.record(clock_ns() - started)
        log_context.leave_call(token)
        if is_user_interrupt(exc):
            cell.error("interrupted", None)
            return exc
        if isinstance(exc, PluginError) and (exc.code != "timeout" or exc.host_raised):
            self._failed(plugin, "lifecycle", operation, exc.code, f"{operation}: {exc.message}")
            if exc.traceback is None:
                exc.traceback = _format(exc)
            return exc
        self._failed(
            plugin, "lifecycle", operation, code, f"{operation}: {type(exc).__name__}: {exc}"
        )
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "plugin %s: %s raised %r",
            plugin,
            operation,
            exc,
            extra={"plugin": plugin},
        )
        error = PluginError(
            f"plugin {plugin!r}: {operation} raised {type(exc).__name__}: {exc}",
            code=code,
            plugin=plugin,
        )
        error.traceback = _format(exc)
        return error

    def call(
        self,
        plugin: str,
        operation: str,
        fn: Callable[..., Any],
        *args: Any,
        code: str = "crashed",
        timeout: float | None = None,
        quiet: bool = False,
    ) -> Any:
        """``invoke`` on a helper thread with a deadline: a hang becomes ``timeout``.

        Helper threads are pooled (see ``_Worker``): starting a thread per call cost
        ~45 us at the median and up to 4 ms at p99 on a busy 2-core machine, and the
        manager makes one call per plugin load and one per unload.  A worker whose call
        overruns its deadline is abandoned to finish (or hang) on its own; the next call
        gets another worker.  A ``call`` made from inside a guarded call runs inline, under
        the outer call's deadline.
        """
        deadline = self.timeout_for(plugin) if timeout is None else timeout
        if getattr(in_worker, "active", False):
            return self.invoke(plugin, operation, fn, *args, code=code, quiet=quiet)
        task = Task(self, plugin, operation, fn, args, code, quiet)
        self._workers.submit(task, f"plugin:{plugin}:{operation}")
        if not task.done.acquire(timeout=deadline if deadline < _NEVER_S else -1):
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
                _supervisions[threading.get_ident()] = sup
                try:
                    for item in items[first:]:
                        try:
                            outcome: Any = work(item)
                        except PluginError as exc:
                            outcome = exc
                        except BaseException as exc:
                            if isinstance(exc, Abandoned) and sup.cancelled:
                                return  # the supervisor gave up on this worker
                            # Host code handling this item failed (a bug, or a plugin
                            # object misbehaving outside a watched call, whatever it
                            # raised): that item fails, the batch goes on.
                            logger.error("supervised work on %r failed", item, exc_info=exc)
                            outcome = PluginError(
                                f"{item!r}: {type(exc).__name__}: {exc}", code="crashed"
                            )
                            outcome.traceback = _format(exc)
                        with sup.lock:  # the condition's lock: no one waits on a notify
                            if sup.cancelled:
                                return
                            sup.outcomes.append(outcome)
                finally:
                    _supervisions.pop(threading.get_ident(), None)
                    with sup.cond:
                        sup.done = True
                        sup.cond.notify_all()

            worker = threading.Thread(target=run_batch, name="plugin:supervised", daemon=True)
            worker.start()
            overdue: tuple[str, str, int, int] | None = None
            with sup.cond:
                try:
                    while not sup.done:
                        current = sup.current
                        now = clock_ns()
                        if current is not None and now >= current[3]:
                            sup.cancelled = True
                            overdue = current
                            break
                        # Wake at least every 50 ms: a call that starts after this check
                        # still meets its deadline within that slack.
                        remaining = (
                            (current[3] - now) / 1e9 if current is not None else self.timeout
                        )
                        sup.cond.wait(min(remaining, 0.05))
                except BaseException:
                    # The user's Ctrl-C (or the host going down): the worker stops at its
                    # next plugin call instead of loading the rest behind our back.
                    sup.cancelled = True
                    raise
                outcomes.extend(sup.outcomes)
            if overdue is None:
                break
            plugin, operation, started, deadline = overdue
            error = self._timed_out(plugin, operation, (deadline - started) / 1e9)
            if on_timeout is not None:
                on_timeout(items[len(outcomes)], error)
            outcomes.append(error)
        return outcomes

    def _timed_out(self, plugin: str, operation: str, limit: float) -> PluginError:
        """Count an overrun call and describe it."""
        self.metrics.cell(plugin, "lifecycle", operation).record(int(limit * 1e9))
        self._failed(
            plugin, "lifecycle", operation, "timeout", f"{operation} timed out after {limit:g}s"
        )
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
        sup = _supervisions.get(_get_ident())
        metrics = self.metrics
        if sup is None or metrics.tracers:
            if sup is None:
                return self.call(plugin, operation, fn, *args, code=code, timeout=timeout)
            return self._watched_traced(sup, plugin, operation, fn, args, code, timeout)
        # ``invoke`` fused with publishing the deadline (one clock read for both): a plugin
        # load makes six of these calls, and the two layers were most of their cost.
        limit = self.timeouts.get(plugin, self.timeout) if timeout is None else timeout
        token = log_context.enter_call(plugin, operation)
        started = clock_ns()
        # Published without the lock (one atomic attribute write): the supervisor can
        # only see the previous call's entry until that call cleared it, under the lock,
        # below.  Clearing and reading ``cancelled`` must be one step: a call the
        # supervisor gave up on must not return as if it had succeeded.
        sup.current = (plugin, operation, started, started + _span_ns(limit))
        try:
            result = fn(*args)
        except BaseException as exc:
            failure = self._raised(plugin, operation, code, False, exc, started, token)
            if failure is exc:
                raise
            raise failure from exc
        else:  # counted and the log context left even when the call returned too late
            metrics.lifecycle(plugin, operation, clock_ns() - started)
            log_context.leave_call(token)
        finally:
            lock = sup.lock  # acquire/release rather than ``with``: nothing between can raise
            lock.acquire()
            abandoned = sup.cancelled
            sup.current = None
            lock.release()
            if abandoned:
                raise Abandoned
        return result

    def _watched_traced(
        self,
        sup: _Supervision,
        plugin: str,
        operation: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        code: str,
        timeout: float | None,
    ) -> Any:
        """``watched`` with tracers subscribed: the deadline around ``invoke``."""
        started = clock_ns()
        limit = self.timeout_for(plugin) if timeout is None else timeout
        sup.current = (plugin, operation, started, started + _span_ns(limit))
        try:
            return self.invoke(plugin, operation, fn, *args, code=code)
        finally:
            with sup.lock:
                abandoned = sup.cancelled
                sup.current = None
            if abandoned:
                raise Abandoned

    def bind(
        self,
        owner: str,
        component: str,
        fn: Callable[[Any, Any], Any],
        lease: Lease | None = None,
        redirect: Callable[[Any, Any], Any] | None = None,
        *,
        kind: str = "step_type",
    ) -> Callable[[Any, Any], Any]:
        """A step's ``execute(step, context)`` (or, with ``kind="provider"``, a provider's
        ``query(prompt, options)``) wrapped once: the wrapper calls it, times it and counts
        it (errors too, by code) into the cell ``(owner, kind, component)``, with no lookups
        per call beyond the thread's shard (two fixed arguments are cheaper than ``*args``).

        With a ``lease``, the call is counted in flight while it runs, and once the lease is
        retired (the plugin version was swapped out or unloaded) new calls go to
        ``redirect`` instead: the caller that is current now.
        """
        metrics = self.metrics
        cell = metrics.cell(owner, kind, component)
        meter = cell.meter()
        if lease is None:
            lease = Lease()
        lease.meters.append(meter)
        retired = lease.retired
        tracers = metrics.tracers
        failed = self._failed
        noun = "step type" if kind == "step_type" else kind
        local = meter.local
        new_shard = meter.shard
        timed = metrics.enabled

        def count_error(exc: BaseException) -> None:
            code = "interrupted" if is_user_interrupt(exc) else error_code(exc)
            message = f"{component} raised {type(exc).__name__} [{code}]"
            failed(owner, kind, component, code, message)

        def detour(shard: list[int], first: Any, second: Any) -> Any:
            """Every call but the step's hot path: a retired version (redirect), a
            subscribed tracer, a provider query (which also notes itself on the run and in
            the log context: a network round trip in live mode can afford that), an untimed
            caller."""
            if retired:
                shard[STARTED] -= 1
                if redirect is None:
                    raise PluginError(
                        f"plugin {owner!r}: {noun} {component!r} was unloaded",
                        code="not_loaded",
                        plugin=owner,
                    )
                return redirect(first, second)
            token = _trace_start(metrics, cell.key) if tracers else None
            if kind == "provider":
                log_context.note_provider(component)
            context_token = log_context.enter_call(owner, component) if kind == "provider" else None
            started = clock_ns()
            try:
                result = fn(first, second)
            except BaseException as exc:
                elapsed = clock_ns() - started if timed else 0
                shard[SUM] += elapsed
                shard[elapsed.bit_length() + FIRST_BUCKET] += 1
                count_error(exc)
                if context_token is not None:
                    log_context.leave_call(context_token)
                if token is not None:
                    _trace_end(token, exc)
                raise
            elapsed = clock_ns() - started if timed else 0
            shard[SUM] += elapsed
            shard[elapsed.bit_length() + FIRST_BUCKET] += 1
            if context_token is not None:
                log_context.leave_call(context_token)
            if token is not None:
                _trace_end(token, None)
            return result

        shared = meter.shared
        if kind == "step_type" and not timed and shared is not None:
            # metrics=False: calls are counted (in flight, finished, errors), not timed.
            def untimed(step: Any, context: Any) -> Any:
                shard = shared
                shard[1] += 1  # STARTED
                if retired or tracers:
                    return detour(shard, step, context)
                try:
                    result = fn(step, context)
                except BaseException as exc:
                    shard[2] += 1
                    count_error(exc)
                    raise
                shard[2] += 1  # FIRST_BUCKET: finished, duration unknown
                return result

            untimed.__qualname__ = untimed.__name__ = f"guarded[{owner}:{component}]"
            return untimed

        if kind != "step_type" or not timed:
            # A provider query notes itself on the run and in the log context (a network
            # round trip in live mode; the few hundred ns do not matter).
            def general(first: Any, second: Any) -> Any:
                shard = new_shard()
                shard[STARTED] += 1
                return detour(shard, first, second)

            general.__qualname__ = general.__name__ = f"guarded[{owner}:{kind}:{component}]"
            return general

        if shared is not None:
            # The step dispatch hot path: three list increments into the meter's shared
            # shard (exact under the GIL, see ``metrics``), the first counting the call in
            # flight for the lease.
            def fast(step: Any, context: Any) -> Any:
                shard = shared
                shard[1] += 1  # STARTED
                if retired or tracers:
                    return detour(shard, step, context)
                started = clock_ns()
                try:
                    result = fn(step, context)
                except BaseException as exc:
                    elapsed = clock_ns() - started
                    shard[0] += elapsed
                    shard[elapsed.bit_length() + 2] += 1
                    count_error(exc)
                    raise
                elapsed = clock_ns() - started
                shard[0] += elapsed  # SUM
                shard[elapsed.bit_length() + 2] += 1  # FIRST_BUCKET + bucket
                return result

            fast.__qualname__ = fast.__name__ = f"guarded[{owner}:{component}]"
            return fast

        # The same with a shard per thread (free-threaded builds).
        assert local is not None

        def guarded(step: Any, context: Any) -> Any:
            try:
                shard = local.s
            except AttributeError:
                shard = new_shard()
            shard[1] += 1  # STARTED
            if retired or tracers:
                return detour(shard, step, context)
            started = clock_ns()
            try:
                result = fn(step, context)
            except BaseException as exc:
                elapsed = clock_ns() - started
                shard[0] += elapsed
                shard[elapsed.bit_length() + 2] += 1
                count_error(exc)
                raise
            elapsed = clock_ns() - started
            shard[0] += elapsed  # SUM
            shard[elapsed.bit_length() + 2] += 1  # FIRST_BUCKET + bucket
            return result

        guarded.__qualname__ = guarded.__name__ = f"guarded[{owner}:{component}]"
        return guarded

    def shield(
        self,
        owner: str,
        operation: str,
        fn: Callable[..., Any],
        *,
        check_result: Callable[[Any], Any] | None = None,
    ) -> Callable[..., Any]:
        """A plugin hook (a step's ``preflight`` or ``semantic_check``) wrapped for the
        engine: counted (kind ``hook``), and whatever it raises becomes a ``PluginError``
        naming the plugin and the hook, except pipeline-ex's own typed errors
        (``ProviderConfigurationError`` from a preflight means "not configured", exit 2)
        and the user's Ctrl-C.  ``check_result`` turns the answer into what the engine
        expects, or raises."""
        cell = self.metrics.cell(owner, "hook", operation)
        failed = self._failed

        def shielded(*args: Any) -> Any:
            started = clock_ns()
            try:
                result = fn(*args)
                if check_result is not None:
                    result = check_result(result)
            except PipelineExError as exc:
                cell.record(clock_ns() - started)
                failed(owner, "hook", operation, exc.code, f"{operation}: {exc.message}")
                raise
            except BaseException as exc:
                cell.record(clock_ns() - started)
                if is_user_interrupt(exc):
                    cell.error("interrupted", None)
                    raise
                message = f"{operation}: {type(exc).__name__}: {exc}"
                failed(owner, "hook", operation, "crashed", message)
                error = PluginError(
                    f"plugin {owner!r}: {operation} raised {type(exc).__name__}: {exc}",
                    code="crashed",
                    plugin=owner,
                )
                error.traceback = _format(exc)
                raise error from exc
            cell.record(clock_ns() - started)
            return result

        shielded.__qualname__ = shielded.__name__ = f"shielded[{owner}:{operation}]"
        return shielded


#: The longest any wait for a plugin is, where a wait needs a number (``Event.wait``,
#: ``poll``): what ``call_timeout_s: .inf`` comes to there, ~11.6 days, below every
#: platform's limit on timeouts.
LONGEST_WAIT_S = 1e6

#: A limit at least this long (or NaN) never expires: ``float("inf")`` means no deadline.
_NEVER_S = 1e9
_NEVER_NS = 1 << 62


def _span_ns(limit: float) -> int:
    """A call's time limit in nanoseconds (an infinite one as good as never)."""
    return int(limit * 1e9) if limit < _NEVER_S else _NEVER_NS


def _trace_start(metrics: Metrics, key: Any) -> list[tuple[Any, Any]]:
    """Open a span (or whatever each tracer keeps) for a plugin call."""
    return [(tracer, tracer.start(key)) for tracer in list(metrics.tracers)]


def _trace_end(tokens: list[tuple[Any, Any]], error: BaseException | None) -> None:
    for tracer, token in reversed(tokens):
        try:
            tracer.end(token, error)
        except Exception:  # an observer must never fail the call it watched
            logger.exception("call tracer %r failed", tracer)


def checkpoint() -> None:
    """Stop host-side work whose supervisor has given up (see ``Guard.supervise``): long
    loops over plugin-provided data call this so an abandoned worker does not go on."""
    sup = _supervisions.get(_get_ident())
    if sup is not None and sup.cancelled:
        raise Abandoned


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


class Abandoned(BaseException):
    """Unwinds a supervised worker whose plugin call overran: the host moved on without it.

    A ``BaseException`` so that no ``except Exception`` in host code can swallow it.
    """


class _Supervision:
    """What a supervising thread and its worker share: the plugin call now running (with
    its deadline), the outcomes so far, and whether the supervisor gave up on the worker."""

    def __init__(self) -> None:
        #: ``cond``'s lock: holding it is holding the condition.
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        #: The running call: plugin, operation, its start and deadline (``clock_ns``).
        self.current: tuple[str, str, int, int] | None = None
        self.outcomes: list[Any] = []
        self.cancelled = False
        self.done = False


#: The supervision each worker thread runs under, by thread id (a dict read is several
#: times cheaper than a ``threading.local`` attribute, and every plugin call asks).
_supervisions: dict[int, _Supervision] = {}
_get_ident = threading.get_ident
