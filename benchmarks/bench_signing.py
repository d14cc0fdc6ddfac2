"""Item 11: verifying a signed plugin (the security issue's target: a 1 MB, 20-file plugin
in under 2 ms).

pipeline-ex: ``signing.verify_directory`` of a directory of 20 files totalling 1 MiB (read
every file, SHA-256 each, compare with the signed manifest, check the Ed25519 signature).
Baseline, same run: reading the same 20 files and hashing them with ``hashlib.sha256``,
which any verification of file contents must pay.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from _common import add_ratios, each_call_ns, emit, goal, parse_args, result, row

from pipeline_ex.plugins import signing

SIZES = {"full": {"repeat": 300, "warmup": 10}, "tiny": {"repeat": 10, "warmup": 2}}
FILES = 20
TOTAL_BYTES = 1024 * 1024


def plugin_directory(root: Path) -> Path:
    folder = root / "signed"
    folder.mkdir()
    (folder / "plugin.yaml").write_text("name: signed\nversion: 1.0.0\nmodule: m0\n")
    each = TOTAL_BYTES // (FILES - 1)
    for index in range(FILES - 1):
        (folder / f"m{index}.py").write_bytes(os.urandom(each // 2).hex().encode()[:each])
    return folder


def read_and_hash(folder: Path) -> None:
    for path in sorted(folder.iterdir()):
        if path.name != signing.SIGNATURE_FILE:
            hashlib.sha256(path.read_bytes()).digest()


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = plugin_directory(root)
        private, public = signing.generate_keypair(root / "keys")
        signing.sign_directory(folder, private)
        key = signing.load_public_key(public)
        assert signing.verify_directory(folder, [key]).ok
        verify = each_call_ns(
            lambda: signing.verify_directory(folder, [key]),
            repeat=cfg["repeat"],
            warmup=cfg["warmup"],
        )
        floor = each_call_ns(lambda: read_and_hash(folder), repeat=cfg["repeat"], warmup=2)
    rows = {
        "verify": row("verify a signed 20-file, 1 MiB plugin directory", verify, "ms", p99=True),
        "floor": row("read + SHA-256 the same files (baseline)", floor, "ms", baseline=True),
    }
    add_ratios(rows["verify"], {"read+hash": rows["floor"]})
    goals = [goal("signature verification < 2 ms", rows["verify"]["median"], 2.0, "ms")]
    return result(
        "signing",
        11,
        "Signature verification of a plugin directory",
        size,
        list(rows.values()),
        goals,
        [],
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
