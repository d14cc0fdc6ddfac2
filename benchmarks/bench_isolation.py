"""Item 6: an isolated plugin's cold start (process and sandbox tiers) and call round trip.

Start: ``ProcessPlugin.start`` of a small directory plugin, from spawning the child to its
"ready" (limits, sandbox layers, audit hook, plugin import), then ``close``; each start is
timed on its own.  Round trip: one provider ``query`` through the proxy (frame out, child
dispatch, frame back).  Baseline, same run: a 1-byte ping-pong over two pipes with a forked
echo process, the floor any pipe-based round trip pays, timed in slices alternating with
the isolated calls, in two regimes:

* back to back: each call starts as the last one returns, so both processes stay on a
  CPU (the woken side usually runs on the waker's CPU: a process switch, ~1.3 us a hop);
* after an idle gap (1 ms sleep before each timed call): the peer's CPU may have gone idle
  and must be woken first (on a KVM guest with halt-polling off, tens of microseconds a
  hop).  On a busy machine there is no idle CPU and the two regimes look alike.

The goal compares back-to-back with back-to-back (the strict pair); the idle pair is
reported beside it.  Where the rest of the time goes: the same call with both sides in one
thread over the same pipes (every instruction of a call, no process switch), and the
codec's share of it (msgpack both ways, ``to_wire`` of the answer).  The child reads
bytecode the host import wrote; with ``PYTHONDONTWRITEBYTECODE`` set and no
``__pycache__``, every start compiles the isolation modules again (about twice the start
time).
"""

from __future__ import annotations

import os
import select
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
from _common import add_ratios, each_call_ns, emit, goal, parse_args, per_call_ns, result, row

from pipeline_ex.plugins.isolation import IsolationSpec, ProcessPlugin, ProviderProxy, sandbox, wire
from pipeline_ex.plugins.isolation.child import OK, REQUEST, Child
from pipeline_ex.plugins.isolation.host import _Child

SIZES = {
    "full": {"starts": 40, "calls": 5000, "idle_calls": 600, "warmup": 3},
    "tiny": {"starts": 5, "calls": 200, "idle_calls": 40, "warmup": 1},
}
#: Sleep before each call of the idle regime: long enough for an idle CPU to halt.
IDLE_GAP_S = 0.001

PLUGIN = """\
class Echo:
    def query(self, prompt, options):
        return {"text": prompt, "success": True, "cost": 0.0}


def init(config):
    return config


def get_metadata(state):
    return {"name": "bench_isolated", "version": "1.0.0", "api_version": 1}


def get_providers(state):
    return [("bench_echo", Echo(), ["echo"])]
"""


class Echo:
    """The plugin's provider, for the same-process measurement."""

    def query(self, prompt: str, options: Any) -> dict[str, Any]:
        return {"text": prompt, "success": True, "cost": 0.0}


def plugin_directory(root: Path) -> Path:
    directory = root / "bench_isolated"
    directory.mkdir()
    (directory / "plugin.yaml").write_text(
        "name: bench_isolated\nversion: 1.0.0\nmodule: plugin\n", encoding="utf-8"
    )
    (directory / "plugin.py").write_text(PLUGIN, encoding="utf-8")
    return directory


@contextmanager
def pipe_echo() -> Iterator[Callable[[], None]]:
    """A forked process echoing one byte over a pair of pipes; yields the ping."""
    to_child_r, to_child_w = os.pipe()
    to_host_r, to_host_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the echo process
        os.close(to_child_w)
        os.close(to_host_r)
        while True:
            byte = os.read(to_child_r, 1)
            if not byte:
                os._exit(0)
            os.write(to_host_w, byte)
    os.close(to_child_r)
    os.close(to_host_w)

    def ping() -> None:
        os.write(to_child_w, b"x")
        os.read(to_host_r, 1)

    try:
        yield ping
    finally:
        os.close(to_child_w)
        os.close(to_host_r)
        os.waitpid(pid, 0)


def after_idle_ns(fn: Callable[[], Any], *, repeat: int, warmup: int = 1) -> list[float]:
    """Time each call after ``IDLE_GAP_S`` of sleep (the idle regime)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    for _ in range(repeat):
        time.sleep(IDLE_GAP_S)
        started = time.perf_counter_ns()
        fn()
        samples.append(float(time.perf_counter_ns() - started))
    return samples


def interleaved(
    a: Callable[[], Any],
    b: Callable[[], Any],
    calls: int,
    warmup: int,
    rounds: int = 20,
    timer: Callable[..., list[float]] = each_call_ns,
) -> tuple[list[float], list[float]]:
    """Time ``a`` and ``b`` in alternating slices, so that a change of CPU frequency or
    load during the run shifts both alike instead of skewing their ratio."""
    first: list[float] = []
    second: list[float] = []
    per_round = max(1, calls // rounds)
    for _ in range(rounds):
        first += timer(a, repeat=per_round, warmup=warmup)
        second += timer(b, repeat=per_round, warmup=warmup)
    return first, second


class _SameProcess:
    """The child's half of the pipes, served on the host's thread: ``receive`` first lets
    the ``Child`` (the very class the child process runs) answer the request that was
    just written, then reads its answer.  A call through it executes every instruction a
    real call does, in one thread, without a process switch."""

    def __init__(self, directory: Path) -> None:
        command_r, command_w = os.pipe()
        reply_r, reply_w = os.pipe()
        child_end = wire.Channel(command_r, reply_w)
        self.child = Child(child_end, {"init": lambda config: config})
        self.child.providers["bench_echo"] = Echo()
        served = self.child

        class HostEnd(wire.Channel):
            def receive(self, deadline: float | None = None) -> Any:
                served.serve(child_end.receive())
                return super().receive(deadline)

        self.ends = (child_end, HostEnd(reply_r, command_w))
        self.plugin = ProcessPlugin(IsolationSpec(plugin="same_process", directory=directory))
        self.plugin._child = _Child(_NoProcess(), self.ends[1], -1)  # type: ignore[arg-type]
        self.plugin.status = "running"
        self.proxy = ProviderProxy(self.plugin, "bench_echo")

    def close(self) -> None:
        for end in self.ends:
            end.close()


class _NoProcess:
    pid = 0


def syscalls_ns(repeat: int) -> list[float]:
    """The reads and writes of one call, in one process: the request frame written and
    read, the answer frame written, polled for and read (what a call's two sides do)."""
    request = wire.encode([REQUEST, 7, "query", ["bench_echo", "ping", {}]])
    reply = wire.encode([OK, 7, Echo().query("ping", {})])
    command_r, command_w = os.pipe()
    reply_r, reply_w = os.pipe()
    poll = select.poll()
    poll.register(reply_r, select.POLLIN)

    def syscalls() -> None:
        os.write(command_w, request)
        os.read(command_r, wire.READ_SIZE)
        os.write(reply_w, reply)
        poll.poll(10_000)
        os.read(reply_r, wire.READ_SIZE)

    try:
        return per_call_ns(syscalls, number=200, repeat=repeat)
    finally:
        for fd in (command_r, command_w, reply_r, reply_w):
            os.close(fd)


def codec_ns(repeat: int) -> list[float]:
    """msgpack both ways for the request and the answer, and ``to_wire`` of the answer."""
    answer = Echo().query("ping", {})
    request = [REQUEST, 7, "query", ["bench_echo", "ping", {}]]
    reply = [OK, 7, answer]
    packer = msgpack.Packer(use_bin_type=True)
    bodies = (packer.pack(request), packer.pack(reply))

    def codec() -> None:
        packer.pack(request)
        wire.decode(bodies[0])
        packer.pack([OK, 7, wire.to_wire(answer)])
        wire.decode(bodies[1])

    return per_call_ns(codec, number=200, repeat=repeat)


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    notes = []
    with tempfile.TemporaryDirectory() as scratch:
        directory = plugin_directory(Path(scratch))
        starts: dict[str, list[float]] = {}
        tiers = ["process"]
        missing = [x for x in sandbox.REQUIRED_LAYERS if x not in sandbox.layers_available()]
        if missing:
            notes.append(f"sandbox not measured: the kernel lacks {', '.join(missing)}")
        else:
            tiers.append("sandbox")
        for tier in tiers:
            spec = IsolationSpec(plugin="bench_isolated", directory=directory, tier=tier)
            starts[tier] = each_call_ns(
                lambda spec=spec: ProcessPlugin.start(spec).close(),
                repeat=cfg["starts"],
                warmup=cfg["warmup"],
            )
        with (
            ProcessPlugin.start(IsolationSpec(plugin="bench_isolated", directory=directory)) as p,
            pipe_echo() as ping,
        ):
            ((_, echo, _),) = p.get_providers(p.init({}))
            assert echo.query("ping", {})["text"] == "ping"

            def call() -> None:
                echo.query("ping", {})

            calls, hot_floor = interleaved(call, ping, cfg["calls"], cfg["warmup"] * 10)
            idle_calls, idle_floor = interleaved(
                call, ping, cfg["idle_calls"], cfg["warmup"], timer=after_idle_ns
            )
        same = _SameProcess(directory)
        try:
            assert same.proxy.query("ping", {})["text"] == "ping"

            def call_in_one() -> None:
                same.proxy.query("ping", {})

            in_one: list[float] = []
            idle_in_one: list[float] = []
            for _ in range(20):  # alternating slices, like ``interleaved``
                in_one += each_call_ns(call_in_one, repeat=cfg["calls"] // 40, warmup=1)
                idle_in_one += after_idle_ns(call_in_one, repeat=cfg["idle_calls"] // 20)
        finally:
            same.close()
        codec = codec_ns(max(5, cfg["calls"] // 100))
        syscalls = syscalls_ns(max(5, cfg["calls"] // 100))
    notes.append(
        "Round trip: the goal compares the back-to-back call with the back-to-back "
        "ping-pong (both processes on CPU: a ping-pong is two process switches). After an "
        "idle gap both pay for waking a (virtual) CPU, and the call also runs its Python "
        "with cold caches: the same call with both sides in one thread, no process switch "
        "at all, is several times slower after 1 ms of sleep than back to back."
    )
    notes.append(
        "Where the call's time goes: 'both sides in one thread' runs the same code over "
        "the same pipes without a process switch (the call's CPU work); of that, 'codec' is "
        "msgpack both ways plus to_wire of the answer, then the reads, writes and poll; the "
        "rest is Python dispatch on both sides. The call minus the one-thread "
        "figure is the process switching, which is what the ping-pong floor consists of."
    )
    rows = {"process": row("process tier: start to ready, then close", starts["process"], "ms")}
    if "sandbox" in starts:
        rows["sandbox"] = row("sandbox tier: start to ready, then close", starts["sandbox"], "ms")
    rows.update(
        call=row("isolated provider query round trip, back to back", calls, "us", p99=True),
        pipe=row(
            "1-byte pipe ping-pong, back to back, between the isolated calls",
            hot_floor,
            "us",
            p99=True,
            baseline=True,
        ),
        idle_call=row(
            "isolated provider query round trip after 1 ms idle", idle_calls, "us", p99=True
        ),
        idle_pipe=row(
            "1-byte pipe ping-pong after 1 ms idle, between them",
            idle_floor,
            "us",
            p99=True,
            baseline=True,
        ),
        in_one=row("the same query, both sides in one thread, back to back", in_one, "us"),
        idle_in_one=row(
            "the same query, both sides in one thread, after 1 ms idle", idle_in_one, "us"
        ),
        codec=row(
            "of the one-thread query: msgpack both ways + to_wire of the answer", codec, "us"
        ),
        syscalls=row("of the one-thread query: its 2 writes, 2 reads and 1 poll", syscalls, "us"),
    )
    add_ratios(rows["call"], {"pipe": rows["pipe"]})
    add_ratios(rows["idle_call"], {"idle pipe": rows["idle_pipe"]})
    add_ratios(rows["in_one"], {"pipe": rows["pipe"]})
    add_ratios(rows["idle_in_one"], {"idle pipe": rows["idle_pipe"]})
    goals = [goal("process start < 30 ms", rows["process"]["median"], 30.0, "ms")]
    if "sandbox" in rows:
        goals.append(goal("sandbox start < 50 ms", rows["sandbox"]["median"], 50.0, "ms"))
    goals.append(
        goal(
            "round trip within 1.5x the pipe floor (back to back vs back to back)",
            rows["call"]["ratios"]["pipe"],
            1.5,
            "x",
        )
    )
    return result(
        "isolation",
        6,
        "Isolated plugin: cold start and call round trip",
        size,
        list(rows.values()),
        goals,
        notes,
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
