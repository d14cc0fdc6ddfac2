"""What an attacker who can write to a plugin's folder plants: the ``__pycache__`` file
Python would run instead of a module's source."""

from __future__ import annotations

import importlib.util
import marshal
from pathlib import Path


def plant_bytecode(source: Path, code: str) -> None:
    """Write ``code``, compiled, as ``source``'s cached bytecode, under a header that
    matches the source's mtime and size (as pip's compiled ``.pyc`` files do; RECORD lists
    them without a hash), so a plain import runs it."""
    stat = source.stat()
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.parent.mkdir(exist_ok=True)
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
    header += (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
    header += (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    cached.write_bytes(header + marshal.dumps(compile(code, str(source), "exec")))
