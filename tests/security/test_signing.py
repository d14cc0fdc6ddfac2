"""Ed25519 signing of plugin directories and distributions: the four statuses, every way of
tampering, and importing exactly the verified bytes."""

from __future__ import annotations

import importlib
import os
import stat
import sys
from pathlib import Path

import pytest

from installed_distribution import install_distribution
from pipeline_ex.plugins.signing import (
    SIGNATURE_FILE,
    SignatureStatus,
    SigningError,
    generate_keypair,
    sign_directory,
    verify_directory,
)
from pipeline_ex.plugins.verified_import import VerifiedSources

PLUGIN = """
from .helpers import shout


class ThePlugin:
    def init(self, config):
        return {}

    def get_metadata(self, state):
        return {"name": "signed", "version": "1.0"}

    def get_step_types(self, state):
        return []

    def greeting(self):
        return shout("hi")
"""


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "signed"
    folder.mkdir()
    (folder / "plugin.yaml").write_text("name: signed\nversion: '1.0'\nmodule: plugin:ThePlugin\n")
    (folder / "plugin.py").write_text(PLUGIN)
    (folder / "helpers.py").write_text("def shout(text):\n    return text.upper()\n")
    (folder / "data").mkdir()
    (folder / "data" / "words.txt").write_text("a\nb\n")
    return folder


def test_keygen_writes_a_private_key_only_its_owner_can_read(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    with pytest.raises(SigningError):
        generate_keypair(private.parent)  # never overwrites a key


def test_a_signed_plugin_is_valid_and_hands_back_its_bytes(
    plugin_dir: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    sign_directory(plugin_dir, private)
    result = verify_directory(plugin_dir, [public])
    assert result.status is SignatureStatus.VALID, result.detail
    assert set(result.files) == {"plugin.yaml", "plugin.py", "helpers.py", "data/words.txt"}
    assert result.manifest is not None and result.manifest["name"] == "signed"


def test_unsigned(plugin_dir: Path, keys: tuple[Path, Path]) -> None:
    assert verify_directory(plugin_dir, [keys[1]]).status is SignatureStatus.UNSIGNED


@pytest.mark.parametrize(
    "tamper",
    ["byte_changed", "file_added", "file_removed", "planted_pyc", "symlink_added"],
)
def test_every_kind_of_tampering_is_modified(
    plugin_dir: Path, keys: tuple[Path, Path], tamper: str
) -> None:
    sign_directory(plugin_dir, keys[0])
    if tamper == "byte_changed":
        data = bytearray((plugin_dir / "helpers.py").read_bytes())
        data[-2] ^= 1
        (plugin_dir / "helpers.py").write_bytes(bytes(data))
    elif tamper == "file_added":
        (plugin_dir / "evil.py").write_text("import os\n")
    elif tamper == "file_removed":
        (plugin_dir / "data" / "words.txt").unlink()
    elif tamper == "planted_pyc":
        (plugin_dir / "__pycache__").mkdir()
        (plugin_dir / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"\0" * 16)
    else:
        (plugin_dir / "link.py").symlink_to(plugin_dir / "helpers.py")
    result = verify_directory(plugin_dir, [keys[1]])
    assert result.status is SignatureStatus.MODIFIED, result.detail
    assert result.files == {}


def test_untrusted_key_and_forged_signature_are_invalid(
    plugin_dir: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    sign_directory(plugin_dir, keys[0])
    _, other_public = generate_keypair(tmp_path / "other")
    assert verify_directory(plugin_dir, [other_public]).status is SignatureStatus.INVALID
    signature = plugin_dir / SIGNATURE_FILE
    text = signature.read_text().replace('"version": "1.0"', '"version": "9.9"')
    signature.write_text(text)
    result = verify_directory(plugin_dir, [keys[1]])
    assert result.status is SignatureStatus.INVALID and "does not match" in result.detail
    signature.write_text("{not json")
    assert verify_directory(plugin_dir, [keys[1]]).status is SignatureStatus.INVALID


def test_signing_refuses_what_it_cannot_cover(plugin_dir: Path, keys: tuple[Path, Path]) -> None:
    (plugin_dir / "__pycache__").mkdir()
    with pytest.raises(SigningError, match="bytecode"):
        sign_directory(plugin_dir, keys[0])
    (plugin_dir / "__pycache__").rmdir()
    (plugin_dir / "alias.py").symlink_to(plugin_dir / "plugin.py")
    with pytest.raises(SigningError, match="symbolic link"):
        sign_directory(plugin_dir, keys[0])


def test_the_verified_bytes_are_what_gets_imported(
    plugin_dir: Path, keys: tuple[Path, Path]
) -> None:
    sign_directory(plugin_dir, keys[0])
    result = verify_directory(plugin_dir, [keys[1]])
    # The file is swapped after verification: the import must not see the swap.
    (plugin_dir / "helpers.py").write_text("def shout(text):\n    return 'pwned'\n")
    package = "_pipeline_ex_verified_test"
    finder = VerifiedSources(package, result.files, plugin_dir)
    finder.install()
    try:
        module = importlib.import_module(f"{package}.plugin")
        assert module.ThePlugin().greeting() == "HI"
        assert not (plugin_dir / "__pycache__").exists()  # no bytecode written
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"{package}.unverified")
    finally:
        finder.uninstall()
        for name in [n for n in sys.modules if n.startswith(package)]:
            del sys.modules[name]


def _install_fake_distribution(site: Path) -> Path:
    """A minimal installed distribution (what a wheel install leaves): package + RECORD."""
    files = {
        "signedpkg/__init__.py": b"VALUE = 1\n",
        "signedpkg/steps.py": b"def step():\n    return 'ok'\n",
    }
    install_distribution(site, "signedpkg", files)
    return site / "signedpkg"


def test_installed_distributions_are_signed_through_their_record(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_ex.plugins.signing import sign_distribution, verify_distribution

    site = tmp_path / "site"
    package = _install_fake_distribution(site)
    monkeypatch.syspath_prepend(str(site))
    assert verify_distribution("signedpkg", [keys[1]]).status is SignatureStatus.UNSIGNED
    sign_distribution("signedpkg", keys[0])
    assert verify_distribution("signedpkg", [keys[1]]).status is SignatureStatus.VALID
    (package / "steps.py").write_text("def step():\n    return 'evil'\n")
    result = verify_distribution("signedpkg", [keys[1]])
    assert result.status is SignatureStatus.MODIFIED and "steps.py changed" in result.detail


def test_cli_keygen_sign_verify_prints_one_status_and_exits_0_only_for_valid(
    plugin_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from pipeline_ex.cli import app

    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["plugins", *args], prog_name="pipeline-ex")
        return result.exit_code, result.stdout.strip()

    keys = tmp_path / "clikeys"
    assert cli("keygen", "--out", str(keys))[0] == 0
    public, private = str(keys / "pipeline-ex.pub"), str(keys / "pipeline-ex.key")
    assert cli("verify", str(plugin_dir), "--trusted-key", public) == (1, "unsigned")
    assert cli("sign", str(plugin_dir), "--key", private)[0] == 0
    assert cli("verify", str(plugin_dir), "--trusted-key", public) == (0, "valid")
    (plugin_dir / "helpers.py").write_text("x = 1\n")
    assert cli("verify", str(plugin_dir), "--trusted-key", public) == (1, "modified")
    other = tmp_path / "otherkeys"
    cli("keygen", "--out", str(other))
    assert cli("verify", str(plugin_dir), "--trusted-key", str(other / "pipeline-ex.pub")) == (
        1,
        "invalid",
    )
