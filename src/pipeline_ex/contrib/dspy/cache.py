"""The compile cache: compiled programs on disk, one JSON file per key, and their locks.

A key is the SHA-256 of what makes a compiled program what it is: the signature, the module,
the training data's hash, the optimizer and its settings, the metric, and the provider.  The
file holds the program's DSPy state (``dump_state``) and metadata (when it was compiled, how
many demos, the observed metric for ``adaptive``).

Two guarantees:

- **A half-written file is never read.**  A write goes to a temporary file in the same folder,
  is flushed to disk, then renamed over the entry (``os.replace`` is atomic), and the entry
  carries a checksum of the program; a file that does not parse or does not check out is a
  miss (and is compiled again), never a crash or a wrong program.
- **Concurrent runs compile a key once.**  ``lock(key)`` is a ``filelock`` lock file beside the
  entry; the caller re-reads the entry after taking it (see ``programs.compiled_program``), so
  the runs that waited load what the first one wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_ex.contrib.dspy.training import canonical
from pipeline_ex.log import get_logger

logger = get_logger(__name__)

FORMAT = "pipeline_ex.dspy/1"
_KEY = re.compile(r"^[0-9a-f]{32}$")
#: How long a run waits for another process compiling the same key (a compile against a
#: live model can take minutes).
LOCK_TIMEOUT = 1800.0


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    meta: Mapping[str, Any]
    program: Mapping[str, Any]

    @property
    def created_at(self) -> float:
        return float(self.meta.get("created_at", 0.0))

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.created_at


def cache_key(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(parts).encode()).hexdigest()[:32]


def _checksum(program: Any) -> str:
    return hashlib.sha256(canonical(program).encode()).hexdigest()


class CompileCache:
    """Compiled programs under ``directory`` (created on first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def read(self, key: str) -> CacheEntry | None:
        """The entry for ``key``; ``None`` if there is none or it is damaged (logged)."""
        return self._read_file(self.path(key))

    def _read_file(self, path: Path) -> CacheEntry | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("dspy cache: ignoring unreadable entry %s (%s)", path, exc)
            return None
        if (
            not isinstance(data, dict)
            or data.get("format") != FORMAT
            or not isinstance(data.get("meta"), dict)
            or not isinstance(data.get("program"), dict)
            or data.get("checksum") != _checksum(data["program"])
        ):
            logger.warning("dspy cache: ignoring damaged entry %s", path)
            return None
        return CacheEntry(path.stem, path, data["meta"], data["program"])

    def write(self, key: str, meta: Mapping[str, Any], program: Mapping[str, Any]) -> CacheEntry:
        """Write atomically: readers see the old entry or the new one, never a part."""
        self.directory.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = {
            "format": FORMAT,
            "key": key,
            "meta": dict(meta),
            "program": dict(program),
            "checksum": _checksum(program),
        }
        text = json.dumps(payload, indent=1, ensure_ascii=False, default=str)
        target = self.path(key)
        handle, temporary = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return CacheEntry(key, target, payload["meta"], payload["program"])

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold ``key``'s lock file (across processes and threads)."""
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.directory / f"{key}.lock"), timeout=timeout, thread_local=False):
            yield

    def entries(self) -> list[CacheEntry]:
        """Every readable entry, newest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("*.json"):
            if _KEY.match(path.stem):
                entry = self._read_file(path)
                if entry is not None:
                    found.append(entry)
        return sorted(found, key=lambda e: e.created_at, reverse=True)

    def clear(self) -> int:
        """Remove every entry, lock and leftover temporary file; returns entries removed."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        for path in self.directory.iterdir():
            stem = path.name.split(".")[1] if path.name.startswith(".") else path.stem
            if not _KEY.match(stem):
                continue  # not ours: leave it
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += path.suffix == ".json"
        return removed


class MemoryCache:
    """The cache of a plugin configured with ``cache_enabled: false``: compiled programs live
    as long as the plugin (one compile per key and process, nothing written to disk)."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self._entries: dict[str, CacheEntry] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def read(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def write(self, key: str, meta: Mapping[str, Any], program: Mapping[str, Any]) -> CacheEntry:
        entry = CacheEntry(key, Path(f"<memory>/{key}"), dict(meta), dict(program))
        self._entries[key] = entry
        return entry

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise TimeoutError(f"waited {timeout:g}s for another compile of {key}")
        try:
            yield
        finally:
            lock.release()

    def entries(self) -> list[CacheEntry]:
        return sorted(self._entries.values(), key=lambda e: e.created_at, reverse=True)

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count
