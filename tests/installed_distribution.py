"""A fake installed distribution, as a wheel install leaves one: files, and a RECORD
listing each with its SHA-256 and size (what signing a distribution covers)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path


def install_distribution(site: Path, name: str, files: Mapping[str, bytes]) -> None:
    """Write ``files`` (paths relative to ``site``) and ``name``'s METADATA and RECORD."""
    info = f"{name}-1.0.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
    }
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    write_record(site, info, files)


def write_record(
    site: Path, info: str, files: Iterable[str], *, unhashed: Iterable[str] = ()
) -> None:
    """``info``'s RECORD for ``files`` as they are on disk now; ``unhashed`` ones are
    listed without a hash (as pip lists the bytecode it compiles)."""
    bare = set(unhashed)
    rows = []
    for rel in files:
        if rel in bare:
            rows.append(f"{rel},,")
            continue
        data = (site / rel).read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{rel},sha256={digest},{len(data)}")
    rows.append(f"{info}/RECORD,,")
    (site / info / "RECORD").write_text("\n".join(rows) + "\n")
