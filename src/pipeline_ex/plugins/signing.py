"""Ed25519 code signing of plugins, with Grafana's four verification statuses.

A signature covers a *manifest*: the plugin's name and version and, for every file of the
plugin, its path, size and SHA-256.  Signing a directory refuses what cannot be covered
honestly: symbolic links (their target is outside the signature), special files, and
compiled bytecode (``__pycache__``, ``.pyc``: Python would run a planted ``.pyc`` instead of
the signed source).  Verification answers exactly one of:

* ``valid``: signed by a trusted key, and every file is as signed;
* ``invalid``: no usable signature (malformed, bad signature, or a key not trusted);
* ``modified``: validly signed, but a file changed, was added or was removed;
* ``unsigned``: no signature at all.

A ``valid`` verification hands back the bytes it hashed (``Verification.files``), so that
the loader can import exactly what was verified instead of re-reading files that could have
been swapped in between (see ``verified_import``).  Installed distributions are signed
through their ``RECORD`` (the wheel's own list of files with their SHA-256): the signature
covers the RECORD entries and verification re-hashes the files on disk; a ``valid`` one hands
back those bytes too, and the plugin's package is imported from them
(``verified_import.distribution_sources``), so a ``.pyc`` that pip compiled at install time
(listed in RECORD without a hash) is never what runs.
"""

from __future__ import annotations

# base64, csv, hashlib and tempfile are imported where they are used: every start-up imports
# this module (through the loader), few runs sign or verify anything.
import enum
import io
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PluginError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

#: The signature file written into a signed plugin directory (and a distribution's
#: ``.dist-info`` folder); it is the one file a manifest does not list.
SIGNATURE_FILE = "plugin.sig.json"
FORMAT = "pipeline-ex-signature/1"
#: Bounds on what is hashed, so a hostile directory cannot make verification run away.
MAX_FILES = 10_000
MAX_TOTAL_BYTES = 256 * 1024 * 1024
_BYTECODE_SUFFIXES = (".pyc", ".pyo")


class SignatureStatus(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    MODIFIED = "modified"
    UNSIGNED = "unsigned"


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one plugin; ``files`` is set only when ``valid``."""

    status: SignatureStatus
    detail: str
    key_id: str | None = None
    manifest: Mapping[str, Any] | None = None
    #: The bytes that were verified, by path (relative to the plugin directory, or as the
    #: distribution's RECORD names them): what the loader imports.
    files: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is SignatureStatus.VALID


class SigningError(PluginError):
    """Keys or plugins that cannot be signed (or keys that cannot be read)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="signature_invalid")


# -- keys ------------------------------------------------------------------------------------
def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - cryptography is a core dependency
        raise SigningError(f"plugin signing needs the 'cryptography' package: {exc}") from exc
    return serialization, ed25519


def generate_keypair(out_dir: str | Path, name: str = "pipeline-ex") -> tuple[Path, Path]:
    """Write ``NAME.key`` (PKCS#8 PEM, mode 0600) and ``NAME.pub`` into ``out_dir``."""
    serialization, ed25519 = _crypto()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / f"{name}.key", out / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise SigningError(f"{path} already exists; refusing to overwrite a key")
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Created with 0600 from the start: no moment where another user could read it.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"cannot read private key {path}: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SigningError(f"{path} is not an Ed25519 private key")
    return key  # type: ignore[no-any-return]


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"cannot read public key {path}: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SigningError(f"{path} is not an Ed25519 public key")
    return key  # type: ignore[no-any-return]


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: SHA-256 of its raw bytes, 16 hex digits."""
    import hashlib

    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# -- manifests ----------------------------------------------------------------------------------
def _canonical(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_directory(directory: Path) -> dict[str, bytes]:
    """Every file of a plugin directory, as ``{posix relative path: bytes}``.

    Refuses what a signature could not honestly cover: symbolic links, special files and
    compiled bytecode.  The signature file itself is left out.
    """
    if not directory.is_dir():
        raise SigningError(f"{directory} is not a directory")
    files: dict[str, bytes] = {}
    total = 0
    for root, dirs, names in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in [*dirs, *names]:
            path = Path(root) / name
            rel = path.relative_to(directory).as_posix()
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise SigningError(f"{rel} is a symbolic link; a signed plugin cannot have any")
            if name == "__pycache__" or name.endswith(_BYTECODE_SUFFIXES):
                raise SigningError(
                    f"{rel} is compiled bytecode; delete it (a signed plugin is imported from "
                    "its verified sources only)"
                )
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise SigningError(f"{rel} is not a regular file")
            if rel == SIGNATURE_FILE:
                continue
            if len(files) >= MAX_FILES:
                raise SigningError(f"{directory} has more than {MAX_FILES} files")
            total += info.st_size
            if total > MAX_TOTAL_BYTES:
                raise SigningError(f"{directory} holds more than {MAX_TOTAL_BYTES} bytes")
            files[rel] = path.read_bytes()
    return files


def _file_entries(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    import hashlib

    return {
        rel: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for rel, data in sorted(files.items())
    }


def _identity(directory: Path, files: Mapping[str, bytes]) -> tuple[str, str]:
    """Name and version from the directory's ``plugin.yaml`` manifest."""
    from pipeline_ex.documents import load_yaml

    raw = files.get("plugin.yaml")
    if raw is None:
        raise SigningError(f"{directory} has no plugin.yaml manifest to take name and version from")
    data = load_yaml(raw, str(directory / "plugin.yaml")).data
    if not isinstance(data, Mapping) or "name" not in data or "version" not in data:
        raise SigningError(f"{directory}/plugin.yaml must give name and version")
    return str(data["name"]), str(data["version"])


def _write_signature(target: Path, manifest: Mapping[str, Any], key: Ed25519PrivateKey) -> None:
    import base64
    import tempfile

    body = _canonical(manifest)
    document = {
        "format": FORMAT,
        "key_id": key_id(key.public_key()),
        "manifest": manifest,
        "signature": base64.b64encode(key.sign(body)).decode(),
    }
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".sig-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sign_directory(directory: str | Path, private_key: str | Path) -> Path:
    """Sign a plugin directory; returns the signature file written into it."""
    folder = Path(directory)
    key = load_private_key(private_key)
    files = read_directory(folder)
    name, version = _identity(folder, files)
    manifest = {
        "kind": "directory",
        "name": name,
        "version": version,
        "files": _file_entries(files),
    }
    target = folder / SIGNATURE_FILE
    _write_signature(target, manifest, key)
    return target


# -- verification -------------------------------------------------------------------------------
def _trusted(keys: Iterable[str | Path | Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    _, ed25519 = _crypto()
    out: dict[str, Ed25519PublicKey] = {}
    for key in keys:
        if isinstance(key, str | Path):
            public = load_public_key(key)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            public = key
        else:
            raise SigningError(f"not a public key: {key!r}")
        out[key_id(public)] = public
    return out


def _check_signature(
    signature_file: Path, trusted: Mapping[str, Ed25519PublicKey]
) -> Verification | tuple[str, Mapping[str, Any]]:
    """The signer and manifest of a well-formed, trusted signature, or the verdict."""
    import base64

    try:
        document = json.loads(signature_file.read_text(encoding="utf-8"))
        manifest = document["manifest"]
        signer = str(document["key_id"])
        signature = base64.b64decode(document["signature"], validate=True)
        if document.get("format") != FORMAT or not isinstance(manifest, dict):
            raise ValueError(f"unknown signature format {document.get('format')!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Verification(SignatureStatus.INVALID, f"unreadable signature file: {exc}")
    public = trusted.get(signer)
    if public is None:
        return Verification(
            SignatureStatus.INVALID, f"signed by key {signer}, which is not trusted", signer
        )
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(signature, _canonical(manifest))
    except InvalidSignature:
        return Verification(SignatureStatus.INVALID, "the signature does not match", signer)
    return signer, manifest


def _compare(expected: Mapping[str, Any], actual: Mapping[str, dict[str, Any]]) -> list[str]:
    changes = []
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            changes.append(f"{rel} removed")
        elif rel not in expected:
            changes.append(f"{rel} added")
        elif expected[rel] != actual[rel]:
            changes.append(f"{rel} changed")
    return changes


def _verdict(
    signer: str,
    manifest: Mapping[str, Any],
    changes_against: Callable[[Mapping[str, Any]], list[str]],
    files: Mapping[str, bytes] | None = None,
) -> Verification:
    """``modified`` listing what differs from the signed manifest, else ``valid``."""
    expected = manifest.get("files")
    if not isinstance(expected, dict):
        return Verification(SignatureStatus.INVALID, "the manifest lists no files", signer)
    changes = changes_against(expected)
    if changes:
        return Verification(SignatureStatus.MODIFIED, "; ".join(changes[:10]), signer, manifest)
    return Verification(
        SignatureStatus.VALID,
        f"signed by {signer}: {manifest.get('name')} {manifest.get('version')}",
        signer,
        manifest,
        files or {},
    )


def verify_directory(
    directory: str | Path, trusted_keys: Iterable[str | Path | Ed25519PublicKey]
) -> Verification:
    """Verify a plugin directory against trusted public keys (paths or key objects)."""
    folder = Path(directory)
    signature_file = folder / SIGNATURE_FILE
    if not signature_file.exists():
        return Verification(SignatureStatus.UNSIGNED, f"{folder} has no {SIGNATURE_FILE}")
    checked = _check_signature(signature_file, _trusted(trusted_keys))
    if isinstance(checked, Verification):
        return checked
    signer, manifest = checked
    try:
        files = read_directory(folder)
    except SigningError as exc:
        return Verification(SignatureStatus.MODIFIED, exc.message, signer, manifest)
    return _verdict(
        signer, manifest, lambda expected: _compare(expected, _file_entries(files)), files
    )


# -- installed distributions (through their RECORD) -----------------------------------------
def _distribution(name: str) -> Any:
    from importlib import metadata

    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise SigningError(f"no installed distribution named {name!r}") from None


def _record_entries(dist: Any) -> dict[str, dict[str, Any]]:
    """RECORD's hashed entries as ``{path: {sha256, size}}`` (unhashed ones, such as RECORD
    itself, are left out: they are covered by signing RECORD's content)."""
    import base64
    import csv

    text = dist.read_text("RECORD")
    if text is None:
        raise SigningError(f"distribution {dist.metadata['Name']} has no RECORD")
    entries: dict[str, dict[str, Any]] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) != 3 or not row[1]:
            continue
        path, digest, size = row
        algorithm, _, value = digest.partition("=")
        if algorithm != "sha256":
            continue
        padded = value + "=" * (-len(value) % 4)
        entries[path] = {
            "sha256": base64.urlsafe_b64decode(padded).hex(),
            "size": int(size) if size.isdigit() else None,
        }
    return entries


def _dist_info_dir(dist: Any) -> Path:
    located = Path(dist.locate_file(""))
    for path in located.glob("*.dist-info"):
        if (path / "RECORD").is_file() and path.name.lower().startswith(
            str(dist.metadata["Name"]).lower().replace("-", "_")
        ):
            return path
    raise SigningError(f"cannot find the .dist-info folder of {dist.metadata['Name']}")


def sign_distribution(name: str, private_key: str | Path) -> Path:
    """Sign an installed distribution's RECORD; the signature goes into its .dist-info."""
    key = load_private_key(private_key)
    dist = _distribution(name)
    problems = _disk_changes(dist, _record_entries(dist))
    if problems:
        raise SigningError(
            f"{name}'s files do not match its RECORD ({'; '.join(problems[:5])}); reinstall it"
        )
    manifest = {
        "kind": "distribution",
        "name": str(dist.metadata["Name"]),
        "version": str(dist.version),
        "files": _record_entries(dist),
    }
    target = _dist_info_dir(dist) / SIGNATURE_FILE
    _write_signature(target, manifest, key)
    return target


def _disk_changes(
    dist: Any, entries: Mapping[str, dict[str, Any]], read: dict[str, bytes] | None = None
) -> list[str]:
    """What differs on disk from ``entries``; ``read`` receives the bytes of each file
    that matched (what a ``valid`` verification hands to the import)."""
    import hashlib

    changes = []
    for rel, expected in sorted(entries.items()):
        path = Path(dist.locate_file(rel))
        try:
            data = path.read_bytes()
        except OSError:
            changes.append(f"{rel} removed")
            continue
        if hashlib.sha256(data).hexdigest() != expected["sha256"] or (
            expected.get("size") is not None and len(data) != expected["size"]
        ):
            changes.append(f"{rel} changed")
        elif read is not None:
            read[rel] = data
    return changes


def verify_distribution(
    name: str, trusted_keys: Iterable[str | Path | Ed25519PublicKey]
) -> Verification:
    """Verify an installed distribution signed with ``sign_distribution``."""
    dist = _distribution(name)
    signature_file = _dist_info_dir(dist) / SIGNATURE_FILE
    if not signature_file.exists():
        return Verification(SignatureStatus.UNSIGNED, f"{name} has no {SIGNATURE_FILE}")
    checked = _check_signature(signature_file, _trusted(trusted_keys))
    if isinstance(checked, Verification):
        return checked
    signer, manifest = checked
    signed_for = normal_name(str(manifest.get("name", "")))
    if manifest.get("kind") != "distribution" or signed_for != normal_name(name):
        # another distribution's RECORD and signature copied in: valid, but not for this
        return Verification(
            SignatureStatus.INVALID,
            f"the signature is for {manifest.get('kind')} {manifest.get('name')!r}, not {name!r}",
            signer,
        )
    files: dict[str, bytes] = {}
    return _verdict(
        signer,
        manifest,
        lambda expected: (
            _compare(expected, _record_entries(dist)) + _disk_changes(dist, expected, files)
        ),
        files,
    )


def normal_name(name: str) -> str:
    """PEP 503 normalisation: ``Foo_Bar`` and ``foo-bar`` are one distribution."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def installed_at(distribution: str) -> Path:
    """The folder the distribution's RECORD paths are relative to (its site directory)."""
    return Path(_distribution(distribution).locate_file(""))


def provided_by(distribution: str, origin: str | None) -> bool:
    """Whether the file ``origin`` (what an import would load) belongs to ``distribution``:
    a module of the same name earlier on ``sys.path`` would shadow the verified one."""
    if origin is None:
        return False
    dist = _distribution(distribution)
    target = Path(origin).resolve()
    return any(Path(dist.locate_file(f)).resolve() == target for f in dist.files or ())
