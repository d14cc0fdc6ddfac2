"""Which documents already passed validation in this Runtime, so a repeat does not pay again.

A ``serve`` process, a batch of runs or a test suite validates the same workflow over and
over; the verdict depends only on the document's content, the workflow schema (the base
plus the schema extensions registered) and the step types registered (unknown types, each
type's own semantic check).  An entry is keyed by a digest of the content and the
``version`` of the ConfigurationSystem and of the StepRegistry, which every write bumps:
loading or unloading a plugin that contributes a schema extension or a step type makes
every earlier entry unreachable (and the LRU bound lets it go).

Only passes are remembered: a refused document is validated again, so its errors always
carry the file and lines of the copy being validated.  The digest is BLAKE2b over
``marshal``'s encoding, which tells apart everything validation tells apart (``1``,
``1.0`` and ``True``; a list and a tuple) and round-trips, so equal digests mean equal
data; data ``marshal`` cannot encode (a YAML date) is simply not cached.
"""

from __future__ import annotations

import hashlib
import marshal
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

#: Entries kept by default; each is a few dozen bytes.
DEFAULT_SIZE = 256

Key = tuple[bytes, int, int]


def content_digest(data: Any) -> bytes | None:
    """A 128-bit digest of ``data``'s exact content, or ``None`` when it cannot be encoded
    (a type ``marshal`` does not know, or a subclass of one it does).

    Format version 2: from version 3 on, ``marshal`` flags every object whose reference
    count is above one (to write back-references), so the same content gave another
    digest whenever something else held one of its strings (a run record holding the
    workflow's name did).
    """
    try:
        encoded = marshal.dumps(data, 2)
    except (ValueError, RecursionError):
        return None
    return hashlib.blake2b(encoded, digest_size=16).digest()


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    maxsize: int


class ValidationCache:
    """A bounded, thread-safe LRU set of ``(digest, schema version, steps version)``."""

    def __init__(self, maxsize: int = DEFAULT_SIZE) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.maxsize = maxsize
        self._entries: OrderedDict[Key, None] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    @staticmethod
    def key(data: Any, schema_version: int, steps_version: int) -> Key | None:
        digest = content_digest(data)
        return None if digest is None else (digest, schema_version, steps_version)

    def passed(self, key: Key) -> bool:
        """Whether ``key`` passed before (counted as a hit or a miss)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self._hits += 1
                return True
            self._misses += 1
            return False

    def remember(self, key: Key) -> None:
        if self.maxsize == 0:
            return
        with self._lock:
            self._entries[key] = None
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries), self.maxsize)
