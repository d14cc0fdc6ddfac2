"""Fixed log-2 latency buckets, and quantiles read back from them.

A call's duration in nanoseconds picks its bucket with ``int.bit_length()``: bucket ``b``
holds durations in ``[2**(b-1), 2**b)`` ns (bucket 0 holds exactly 0).  That is one C
call on the dispatch path, no search, no float maths, and 64 buckets cover anything up to
centuries.  The price is resolution: a bucket spans a factor of two, so a quantile is
interpolated inside its bucket (as Prometheus' ``histogram_quantile`` does) and may be off
by up to that factor in the worst case, which is plenty to tell 1 ms from 100 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Buckets per histogram: ``(2**63 - 1).bit_length() == 63``, so 64 slots hold any ns count.
BUCKETS = 64

#: The buckets exposed to Prometheus as upper bounds in seconds (``le``): every other power
#: of two from 2**10 ns (~1 µs) to 2**36 ns (~69 s), 14 bounds a factor of 4 apart (about
#: as many as Prometheus' default buckets; every power of two made each series 30 lines);
#: faster calls fall in the first, slower ones in ``+Inf``.
EXPOSED = tuple(range(10, 37, 2))


def upper_bound_ns(bucket: int) -> int:
    """The exclusive upper bound of ``bucket`` in nanoseconds."""
    return 1 << bucket


def lower_bound_ns(bucket: int) -> int:
    return 0 if bucket == 0 else 1 << (bucket - 1)


def quantile_ms(counts: Sequence[int], q: float) -> float | None:
    """The ``q``-quantile (0 < q <= 1) in milliseconds from bucket ``counts``, linearly
    interpolated inside the bucket it falls in; ``None`` when there were no calls."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bucket, count in enumerate(counts):
        if count and seen + count >= rank:
            low, high = lower_bound_ns(bucket), upper_bound_ns(bucket)
            fraction = (rank - seen) / count
            return round((low + (high - low) * fraction) / 1e6, 6)
        seen += count
    return round(upper_bound_ns(len(counts) - 1) / 1e6, 6)  # pragma: no cover - rank <= total


def cumulative(counts: Sequence[int]) -> list[tuple[float, int]]:
    """Prometheus buckets: ``[(le seconds, calls at most that long), ..., (inf, total)]``."""
    out: list[tuple[float, int]] = []
    running = sum(counts[: EXPOSED[0] + 1])
    out.append((upper_bound_ns(EXPOSED[0]) / 1e9, running))
    previous = EXPOSED[0]
    for bucket in EXPOSED[1:]:
        running += sum(counts[previous + 1 : bucket + 1])
        out.append((upper_bound_ns(bucket) / 1e9, running))
        previous = bucket
    out.append((float("inf"), sum(counts)))
    return out
