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
import hashlib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

GROUP = "pipeline_ex.plugins"

#: ``importlib.metadata.EntryPoint.pattern``: ``module[:attr.attr] [extras]``.
_REFERENCE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def default_cache_dir() -> Path:
    configured = os.environ.get("PIPELINE_EX_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipeline-ex"


@dataclass(frozen=True)
class EntryPointInfo:
    """What the index knows about an entry point, without importing it."""

    name: str
    value: str
    distribution: str | None

    def load(self) -> Any:
        """Import the referenced object, as ``importlib.metadata.EntryPoint.load`` does."""
        match = _REFERENCE.match(self.value)
        if match is None:  # let importlib.metadata word the error
            from importlib import metadata

            return metadata.EntryPoint(self.name, self.value, GROUP).load()
        module = importlib.import_module(match.group("module"))
        attrs = filter(None, (match.group("attr") or "").split("."))
        return reduce(getattr, attrs, module)


def environment_key(paths: Iterable[str] | None = None) -> str:
    """A digest of sys.path and each entry's mtime: changes when distributions change."""
    digest = hashlib.sha256()
    for entry in paths if paths is not None else sys.path:
        try:
            mtime = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = -1
        digest.update(f"{entry}\0{mtime}\n".encode())
    return digest.hexdigest()


class EntryPointIndex:
    """Entry points of one group, from the cache when the environment is unchanged."""

    def __init__(self, group: str = GROUP, cache_dir: Path | None = None) -> None:
        self.group = group
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self._entries: dict[str, EntryPointInfo] | None = None
        self.rescanned = False

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / f"entry-points-{self.group}.json"

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
        with contextlib.suppress(OSError):
            self.cache_file.unlink()

    def _read(self) -> dict[str, EntryPointInfo]:
        key = environment_key()
        try:
            cached = json.loads(self.cache_file.read_text())
            if cached.get("key") == key:
                return {e["name"]: EntryPointInfo(**e) for e in cached["entries"]}
        except (OSError, ValueError, KeyError, TypeError):
            pass
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
        import tempfile

        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle)
            os.replace(tmp, self.cache_file)
        except OSError:
            pass  # a read-only home is no reason to fail; we just rescan next time
