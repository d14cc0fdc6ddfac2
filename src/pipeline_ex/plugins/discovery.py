"""Entry-point discovery with an index that survives between runs.

``importlib.metadata.entry_points()`` reads every installed distribution's metadata; with
hundreds installed that dominates start-up.  Like stevedore, we keep the answer in a cache
file keyed by the state of the environment: every ``sys.path`` entry with its mtime
(installing or removing a distribution touches its ``site-packages`` folder).  A changed
key means a rescan; an unchanged key means one stat per path entry and one small JSON read.
Nothing is imported until a plugin is enabled, and ``importlib.metadata`` itself (with
``email``, ``zipfile``, ``csv``: ~8 ms of a cold start) only when the index is rebuilt.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterable
from functools import reduce
from pathlib import Path
from typing import Any

from pipeline_ex.records import Record, put

GROUP = "pipeline_ex.plugins"

#: ``importlib.metadata.EntryPoint.pattern``: ``module[:attr.attr] [extras]``.
_REFERENCE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def default_cache_dir() -> Path:
    """``PIPELINE_EX_CACHE_DIR``, else ``$XDG_CACHE_HOME/pipeline-ex``, else
    ``~/.cache/pipeline-ex`` (the XDG default); a home that cannot be found falls back to
    the private temporary folder, since a cache is never a reason to fail."""
    configured = os.environ.get("PIPELINE_EX_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    if base and os.path.isabs(base):  # the XDG spec: relative values are to be ignored
        return Path(base) / "pipeline-ex"
    try:
        return Path.home() / ".cache" / "pipeline-ex"
    except (RuntimeError, KeyError):  # no HOME and no passwd entry
        return fallback_cache_dir()


def fallback_cache_dir() -> Path:
    """Where the index goes when the cache folder is not writable: a per-user folder in the
    temporary directory, used only if it is ours and private (see ``_private_dir``)."""
    import tempfile  # lazily: only a cache miss gets here, and start-up time matters

    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"pipeline-ex-{user}"


def _private_dir(directory: Path) -> bool:
    """A shared temporary folder must not let another user plant an index (its values are
    imported): accept the fallback folder only if we own it and nobody else can write it."""
    try:
        info = directory.stat()
    except OSError:
        return False
    if not hasattr(os, "getuid"):
        return True
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


class EntryPointInfo(Record):
    """What the index knows about an entry point, without importing it."""

    __slots__ = ("distribution", "name", "value")
    FIELDS = ("name", "value", "distribution")
    name: str
    value: str
    distribution: str | None

    def __init__(self, name: str, value: str, distribution: str | None) -> None:
        put(self, "name", name)
        put(self, "value", value)
        put(self, "distribution", distribution)

    def load(self) -> Any:
        """Import the referenced object, as ``importlib.metadata.EntryPoint.load`` does."""
        match = _REFERENCE.match(self.value)
        if match is None:  # let importlib.metadata word the error
            from importlib import metadata

            return metadata.EntryPoint(self.name, self.value, GROUP).load()
        module = importlib.import_module(match.group("module"))
        attrs = filter(None, (match.group("attr") or "").split("."))
        return reduce(getattr, attrs, module)


class DistributionInfo(Record):
    """The distribution behind an entry point, read from its metadata (no plugin code)."""

    __slots__ = ("name", "summary", "version")
    FIELDS = ("name", "version", "summary")
    name: str
    version: str | None
    summary: str

    def __init__(self, name: str, version: str | None, summary: str) -> None:
        put(self, "name", name)
        put(self, "version", version)
        put(self, "summary", summary)


def distribution_info(name: str | None) -> DistributionInfo | None:
    """Version and summary of an installed distribution, or None if it cannot be read."""
    if name is None:
        return None
    from importlib import metadata

    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    summary = (dist.metadata.get_all("Summary") or [""])[0]
    return DistributionInfo(name, dist.version, str(summary))


def environment_key(paths: Iterable[str] | None = None) -> str:
    """Every sys.path entry with its mtime, as text: changes when distributions change.

    Kept as the raw ``entry NUL mtime`` lines rather than a digest: it is compared, never
    shown, a few hundred bytes in the cache file cost nothing, and a digest would import
    ``hashlib`` (OpenSSL behind it, ~2.5 ms: most of a warm discovery) on every start.
    A path cannot hold NUL and an mtime no newline, so two environments never share a key.
    """
    lines = []
    for entry in paths if paths is not None else sys.path:
        try:
            mtime = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = -1
        lines.append(f"{entry}\0{mtime}\n")
    return "".join(lines)


class EntryPointIndex:
    """Entry points of one group, from the cache when the environment is unchanged.

    The index is written to ``cache_dir``; when that is not writable (a read-only home, a
    container), to ``fallback_dir``, where the next start finds it, so an unwritable cache
    folder costs neither a failure nor a rescan and a failed write on every start.
    """

    def __init__(
        self,
        group: str = GROUP,
        cache_dir: Path | None = None,
        *,
        fallback_dir: Path | None = None,
    ) -> None:
        self.group = group
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self._fallback_dir = fallback_dir
        self._entries: dict[str, EntryPointInfo] | None = None
        self.rescanned = False
        self.written_to: Path | None = None

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / self._file_name

    @property
    def fallback_dir(self) -> Path:
        if self._fallback_dir is None:
            self._fallback_dir = fallback_cache_dir()
        return self._fallback_dir

    @property
    def fallback_file(self) -> Path:
        return self.fallback_dir / self._file_name

    @property
    def _file_name(self) -> str:
        return f"entry-points-{self.group}.json"

    def entries(self) -> dict[str, EntryPointInfo]:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def names(self) -> list[str]:
        return sorted(self.entries())

    def get(self, name: str) -> EntryPointInfo | None:
        return self.entries().get(name)

    def invalidate(self) -> None:
        self._entries = None
        for file in (self.cache_file, self.fallback_file):
            with contextlib.suppress(OSError):
                file.unlink()

    def _read(self) -> dict[str, EntryPointInfo]:
        key = environment_key()
        cached = _load(self.cache_file, key)
        if cached is None and _private_dir(self.fallback_dir):
            cached = _load(self.fallback_file, key)
        if cached is not None:
            return cached
        entries = self._scan()
        self.rescanned = True
        self._write(key, entries)
        return entries

    def _scan(self) -> dict[str, EntryPointInfo]:
        from importlib import metadata

        found: dict[str, EntryPointInfo] = {}
        for ep in metadata.entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else None
            found.setdefault(ep.name, EntryPointInfo(ep.name, ep.value, dist))
        return found

    def _write(self, key: str, entries: dict[str, EntryPointInfo]) -> None:
        payload = {
            "key": key,
            "entries": [
                {"name": e.name, "value": e.value, "distribution": e.distribution}
                for e in entries.values()
            ],
        }
        if _write_atomically(self.cache_dir, self.cache_file, payload, mode=None):
            self.written_to = self.cache_file
        elif _write_atomically(self.fallback_dir, self.fallback_file, payload, mode=0o700):
            self.written_to = self.fallback_file


def _load(file: Path, key: str) -> dict[str, EntryPointInfo] | None:
    """The cached entries if ``file`` holds an index for ``key``; anything else (missing,
    unreadable, stale, malformed) is a miss, never an error."""
    try:
        cached = json.loads(file.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and cached.get("key") == key:
            return {e["name"]: EntryPointInfo(**e) for e in cached["entries"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_atomically(directory: Path, file: Path, payload: Any, *, mode: int | None) -> bool:
    """Temporary file + rename, so a concurrent start never reads half an index; False
    (and nothing left behind) when the folder cannot be written."""
    import tempfile

    tmp: str | None = None
    try:
        if mode is None:
            directory.mkdir(parents=True, exist_ok=True)
        else:
            directory.mkdir(mode=mode, parents=True, exist_ok=True)
            if not _private_dir(directory):
                return False
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, file)
        return True
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False
