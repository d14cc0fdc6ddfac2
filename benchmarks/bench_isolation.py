"""Item 6: an isolated plugin's cold start (process and sandbox tiers) and call round trip.

Start: ``ProcessPlugin.start`` of a small directory plugin, from spawning the child to its
"ready" (limits, sandbox layers, audit hook, plugin import), then ``close``; each start is
timed on its own.  Round trip: one provider ``query`` through the proxy (frame out, child
dispatch, frame back).  Baseline, same run: a 1-byte ping-pong over two pipes with a forked
echo process, the floor any pipe-based round trip pays, timed in slices alternating with
the isolated calls.

Both pairs are measured in explicit CPU placements (``os.sched_setaffinity`` on every
thread of each process), because where the scheduler puts the peer decides the result on
a VM: with the peer on the benchmark's CPU a hop is a process switch (~1.3 us); with the
peer on the other CPU each hop wakes a halted vCPU (tens of microseconds on a KVM guest).
Left to the scheduler, the plugin's child and the echo process land on either, so one run
compared a cross-CPU call with a same-CPU ping-pong (37x) and another the reverse.  Here:

* ``one CPU``: the benchmark process, the plugin's child and the echo process all on one CPU;
* ``two CPUs``: the benchmark process on one CPU, the child and the echo process on another
  (skipped, with a note, where the process may use only one CPU).

The call is timed over several children in turn, because a child's speed can depend on its
address-space layout.  Each placement is set again before each slice, the placements
alternate slice by slice, and the CPU each process last ran on (``/proc/PID/stat`` field 39)
is checked after each slice.  The goal is judged in each placement separately.  Where the
rest of the time goes: the same call with both sides in one thread (every instruction of a
call, no process switch), and the codec's and the system calls' share of it.  The child
reads bytecode the host import wrote; with ``PYTHONDONTWRITEBYTECODE`` set and no
``__pycache__``, every start compiles the isolation modules again (about twice the start
time).
"""

from __future__ import annotations

import os
import select
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
from _common import (
    add_ratios,
    each_call_ns,
    emit,
    goal,
    median,
    parse_args,
    per_call_ns,
    result,
    row,
)

from pipeline_ex.plugins.isolation import IsolationSpec, ProcessPlugin, ProviderProxy, sandbox, wire
from pipeline_ex.plugins.isolation.child import OK, REQUEST, Child
from pipeline_ex.plugins.isolation.host import _Child

SIZES = {
    "full": {"starts": 40, "calls": 4800, "rounds": 24, "children": 8, "warmup": 3},
    "tiny": {"starts": 5, "calls": 200, "rounds": 4, "children": 2, "warmup": 1},
}

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
def pipe_echo() -> Iterator[tuple[Callable[[], None], int]]:
    """A forked process echoing one byte over a pair of pipes; yields the ping and its pid."""
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
        yield ping, pid
    finally:
        os.close(to_child_w)
        os.close(to_host_r)
        os.waitpid(pid, 0)


@dataclass(frozen=True)
class Placement:
    """Where the benchmark process and its peer (the plugin's child, the echo process) run."""

    key: str
    label: str
    host_cpu: int
    peer_cpu: int


def placements() -> list[Placement]:
    """One CPU for everything; then the peer on a second CPU, where there is one."""
    cpus = sorted(os.sched_getaffinity(0))
    found = [Placement("one_cpu", "all on one CPU", cpus[0], cpus[0])]
    if len(cpus) > 1:
        found.append(Placement("two_cpus", "peer on the other CPU", cpus[0], cpus[1]))
    return found


def threads(pid: int) -> list[int]:
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]


def pin(pid: int, cpu: int) -> None:
    """Every thread of ``pid`` onto ``cpu`` (affinity is per thread)."""
    for tid in threads(pid):
        os.sched_setaffinity(tid, {cpu})


def last_cpu(pid: int) -> int:
    """The CPU ``pid`` last ran on: field 39 of ``/proc/PID/stat`` (after the ``comm``
    field, which may itself contain spaces and parentheses)."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
        return int(stat.read().rpartition(")")[2].split()[36])


#: What is timed, by name: the ways to time it (a function and the pid of the process that
#: answers it), taken in turn one slice each.
Peers = dict[str, list[tuple[Callable[[], Any], int]]]


class PlacedPairs:
    """The call and the ping-pong, timed in alternating slices, in every placement.

    Before each slice the placement is set again, on the benchmark process and on the
    peer of what is timed; after it, the CPUs both last ran on are compared with the
    placement (a count of slices where they differ ends up in the notes).  Where a side
    has several peers (the call: several children), slices take them in turn."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers
        self.samples: dict[tuple[str, str], list[float]] = {}
        self.by_peer: dict[tuple[str, str, int], list[float]] = {}
        self.misplaced: dict[str, int] = {}

    def run(self, chosen: list[Placement], calls: int, rounds: int, warmup: int) -> None:
        per_round = max(1, calls // rounds)
        me = os.getpid()
        for index in range(rounds):
            for place in chosen:
                for what, options in self.peers.items():
                    which = index % len(options)
                    fn, peer = options[which]
                    pin(me, place.host_cpu)
                    pin(peer, place.peer_cpu)
                    taken = each_call_ns(fn, repeat=per_round, warmup=warmup)
                    self.samples.setdefault((place.key, what), []).extend(taken)
                    self.by_peer.setdefault((place.key, what, which), []).extend(taken)
                    if (last_cpu(me), last_cpu(peer)) != (place.host_cpu, place.peer_cpu):
                        self.misplaced[place.key] = self.misplaced.get(place.key, 0) + 1

    def per_peer(self, place: str, what: str) -> list[float]:
        """The median of each peer's samples in ``place``, in microseconds."""
        found = sorted((k[2], v) for k, v in self.by_peer.items() if k[:2] == (place, what))
        return [median(samples) / 1000 for _, samples in found]


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


def unplaced(peers: Peers, calls: int, rounds: int, warmup: int) -> str:
    """The same pairs left to the scheduler (every process may use every CPU): in how many
    slices each peer last ran on the benchmark's CPU, and the medians of both kinds."""
    allowed = os.sched_getaffinity(0)
    me = os.getpid()
    for options in peers.values():
        for _, peer in options:
            for tid in threads(peer):
                os.sched_setaffinity(tid, allowed)
    per_round = max(1, calls // rounds)
    found: dict[str, dict[bool, list[float]]] = {what: {True: [], False: []} for what in peers}
    for index in range(rounds):
        for what, options in peers.items():
            fn, peer = options[index % len(options)]
            taken = each_call_ns(fn, repeat=per_round, warmup=warmup)
            found[what][last_cpu(me) == last_cpu(peer)].append(median(taken) / 1000)
    parts = []
    for what, split in found.items():
        same, other = split[True], split[False]
        text = f"{what}: peer on the same CPU in {len(same)} of {len(same) + len(other)} slices"
        if same:
            text += f" (median {median(same):.1f} us)"
        if other:
            text += f", on the other in {len(other)} (median {median(other):.1f} us)"
        parts.append(text)
    return "; ".join(parts)


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    notes = []
    original = os.sched_getaffinity(0)
    chosen = placements()
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
        try:
            with ExitStack() as stack:
                calls: list[tuple[Callable[[], Any], int]] = []
                for _ in range(cfg["children"]):
                    spec = IsolationSpec(plugin="bench_isolated", directory=directory)
                    plugin = stack.enter_context(ProcessPlugin.start(spec))
                    ((_, echo, _),) = plugin.get_providers(plugin.init({}))
                    assert echo.query("ping", {})["text"] == "ping"
                    assert plugin.pid is not None
                    calls.append((partial(echo.query, "ping", {}), plugin.pid))
                ping, echo_pid = stack.enter_context(pipe_echo())
                peers: Peers = {"call": calls, "ping": [(ping, echo_pid)]}
                scheduler = unplaced(peers, cfg["calls"] // 4, cfg["rounds"], cfg["warmup"])
                pairs = PlacedPairs(peers)
                pairs.run(chosen, cfg["calls"], cfg["rounds"], cfg["warmup"] * 10)
            same = _SameProcess(directory)
            try:
                assert same.proxy.query("ping", {})["text"] == "ping"

                def call_in_one() -> None:
                    same.proxy.query("ping", {})

                pin(os.getpid(), chosen[0].host_cpu)
                in_one = each_call_ns(call_in_one, repeat=cfg["calls"], warmup=cfg["warmup"] * 10)
            finally:
                same.close()
            codec = codec_ns(max(5, cfg["calls"] // 100))
            syscalls = syscalls_ns(max(5, cfg["calls"] // 100))
        finally:
            for tid in threads(os.getpid()):
                os.sched_setaffinity(tid, original)
    if len(chosen) == 1:
        notes.append(
            "Only one CPU is available to this process: the 'peer on the other CPU' "
            "placement was not measured."
        )
    for key, count in sorted(pairs.misplaced.items()):
        notes.append(f"placement {key}: in {count} slice(s) a process last ran elsewhere")
    notes.append(
        f"Placements: CPU {chosen[0].host_cpu} for the benchmark process"
        + (
            f", CPU {chosen[1].peer_cpu} for the peer in 'peer on the other CPU'"
            if len(chosen) > 1
            else ""
        )
        + ". With the peer on the same CPU a hop is a process switch; on the other CPU "
        "each hop wakes that CPU (on a KVM guest, tens of microseconds), and the call's "
        "share of the difference shrinks. The goal is judged in each placement on its own. "
        f"Left to the scheduler (same run, before pinning): {scheduler}."
    )
    per_child = ", ".join(f"{x:.1f}" for x in pairs.per_peer(chosen[0].key, "call"))
    notes.append(
        f"The call is timed over {cfg['children']} children, slices taking them in turn (a "
        "child's speed can depend on its address-space layout, which differs per process): "
        f"medians per child, {chosen[0].label}: {per_child} us."
    )
    notes.append(
        "Where the call's time goes: 'both sides in one thread' runs the same code over "
        "the same pipes without a process switch (the call's CPU work); of that, 'codec' is "
        "msgpack both ways plus to_wire of the answer, then the reads, writes and poll; the "
        "rest is Python dispatch on both sides. The call on one CPU minus the one-thread "
        "figure is the two process switches, which is what the ping-pong floor consists of."
    )
    rows = {"process": row("process tier: start to ready, then close", starts["process"], "ms")}
    if "sandbox" in starts:
        rows["sandbox"] = row("sandbox tier: start to ready, then close", starts["sandbox"], "ms")
    for place in chosen:
        rows[f"call_{place.key}"] = row(
            f"isolated provider query round trip, {place.label}",
            pairs.samples[(place.key, "call")],
            "us",
            p99=True,
        )
        rows[f"pipe_{place.key}"] = row(
            f"1-byte pipe ping-pong, {place.label}, between the isolated calls",
            pairs.samples[(place.key, "ping")],
            "us",
            p99=True,
            baseline=True,
        )
        add_ratios(rows[f"call_{place.key}"], {"pipe": rows[f"pipe_{place.key}"]})
    rows.update(
        in_one=row("the same query, both sides in one thread, back to back", in_one, "us"),
        codec=row(
            "of the one-thread query: msgpack both ways + to_wire of the answer", codec, "us"
        ),
        syscalls=row("of the one-thread query: its 2 writes, 2 reads and 1 poll", syscalls, "us"),
    )
    add_ratios(rows["in_one"], {"pipe": rows["pipe_one_cpu"]})
    goals = [goal("process start < 30 ms", rows["process"]["median"], 30.0, "ms")]
    if "sandbox" in rows:
        goals.append(goal("sandbox start < 50 ms", rows["sandbox"]["median"], 50.0, "ms"))
    for place in chosen:
        goals.append(
            goal(
                f"round trip within 1.5x the pipe floor, {place.label}",
                rows[f"call_{place.key}"]["ratios"]["pipe"],
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
