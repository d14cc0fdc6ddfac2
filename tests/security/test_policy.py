"""The plugin config's security section at load: the signature gate (before any plugin code
is imported; exactly the verified bytes imported), and grants against declared
permissions (before init where the metadata allows)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installed_distribution import install_distribution
from pipeline_ex import Runtime
from pipeline_ex.plugins import signing
from pipeline_ex.plugins.loader import unload_modules
from pipeline_ex.plugins.signing import generate_keypair, sign_directory
from planted_bytecode import plant_bytecode

PLUGIN = """
import pathlib

pathlib.Path(__file__).with_name("imported.mark").write_text("1")  # an import side effect


class ThePlugin:
    def init(self, config):
        pathlib.Path(__file__).with_name("init.mark").write_text("1")
        return {}

    def get_metadata(self, state):
        return {"name": "guarded", "version": "1.0.0", "api_version": 1,
                "permissions": PERMISSIONS}

    def get_step_types(self, state):
        return [("guarded_step", Step)]


class Step:
    def execute(self, step, context):
        return {"success": True, "text": TEXT}


TEXT = "original"
PERMISSIONS = %s
"""


def _plugin_dir(root: Path, permissions: list[str] | None = None) -> Path:
    folder = root / "guarded"
    folder.mkdir(parents=True)
    (folder / "plugin.yaml").write_text("name: guarded\nversion: 1.0.0\nmodule: impl:ThePlugin\n")
    (folder / "impl.py").write_text(PLUGIN % repr(permissions or []))
    return folder


def _config(
    folder: Path, keys: list[Path] | None = None, policy: str = "require", **security: Any
) -> dict[str, Any]:
    return {
        "plugins": {"guarded": {"path": str(folder)}},
        "security": {
            "signature_policy": policy,
            "trusted_keys": [str(k) for k in keys or []],
            **security,
        },
    }


def _marks(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.mark")}


@pytest.fixture(autouse=True)
def _forget_fake_distributions() -> Any:
    """Each test installs its own copy of the fake distribution: import it afresh."""
    import sys

    yield
    for name in [n for n in sys.modules if n.split(".")[0] in ("signedplug", "otherplug")]:
        del sys.modules[name]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")


def test_require_refuses_an_unsigned_plugin_before_importing_it(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    folder = _plugin_dir(tmp_path)
    with Runtime(_config(folder, [keys[1]]), load_builtins=False) as runtime:
        error = runtime.load_report.failed["guarded"]
        assert error.code == "signature_invalid" and "unsigned" in error.message
        assert _marks(folder) == set()  # not one line of it ran


def test_require_loads_a_valid_plugin_from_the_verified_bytes(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _plugin_dir(tmp_path)
    sign_directory(folder, keys[0])
    real_verify = signing.verify_directory

    def verify_then_swap(directory: Any, trusted: Any) -> signing.Verification:
        result = real_verify(directory, trusted)
        # An attacker swaps the file right after verification: too late.
        source = (folder / "impl.py").read_text().replace('"original"', '"swapped"')
        (folder / "impl.py").write_text(source)
        return result

    monkeypatch.setattr(signing, "verify_directory", verify_then_swap)
    with Runtime(_config(folder, [keys[1]]), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        assert runtime.plugins.get_plugin("guarded").signature == "valid"
        results = runtime.run(
            {"workflow": {"name": "w", "steps": [{"name": "s", "type": "guarded_step"}]}}
        )
        assert results["s"]["text"] == "original"
    assert not (folder / "__pycache__").exists()  # no bytecode read or written


@pytest.mark.parametrize("tamper", ["byte", "added_file", "untrusted_key"])
def test_require_refuses_a_tampered_or_foreign_plugin(
    tmp_path: Path, keys: tuple[Path, Path], tamper: str
) -> None:
    folder = _plugin_dir(tmp_path)
    sign_directory(folder, keys[0])
    trusted = [keys[1]]
    if tamper == "byte":
        (folder / "impl.py").write_text((folder / "impl.py").read_text() + "\n")
    elif tamper == "added_file":
        (folder / "extra.py").write_text("x = 1\n")
    else:
        trusted = [generate_keypair(tmp_path / "other")[1]]
    with Runtime(_config(folder, trusted), load_builtins=False) as runtime:
        error = runtime.load_report.failed["guarded"]
        assert error.code == "signature_invalid"
        assert ("invalid" if tamper == "untrusted_key" else "modified") in error.message
    assert _marks(folder) == set()


def test_warn_loads_an_unsigned_plugin_and_says_so(
    tmp_path: Path, keys: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    folder = _plugin_dir(tmp_path)
    with Runtime(_config(folder, [keys[1]], policy="warn"), load_builtins=False) as runtime:
        assert runtime.load_report.ok
        assert runtime.plugins.get_plugin("guarded").signature == "unsigned"
    assert "signature unsigned" in caplog.text


def test_a_policy_without_trusted_keys_refuses_everything(tmp_path: Path) -> None:
    folder = _plugin_dir(tmp_path)
    with Runtime(_config(folder, []), load_builtins=False) as runtime:
        assert "trusted_keys" in runtime.load_report.failed["guarded"].message


def test_declaring_more_than_granted_is_permission_denied_before_init(tmp_path: Path) -> None:
    folder = _plugin_dir(tmp_path, ["network:api.example.com:443", "env:EXAMPLE_TOKEN"])
    config = _config(folder, policy="off", grants={"guarded": ["network:api.example.com"]})
    with Runtime(config, load_builtins=False) as runtime:
        error = runtime.load_report.failed["guarded"]
        assert error.code == "permission_denied" and "env:EXAMPLE_TOKEN" in error.message
        assert "init.mark" not in _marks(folder)
    (folder / "imported.mark").unlink()
    config["security"]["grants"]["*"] = ["env:EXAMPLE_*"]
    with Runtime(config, load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed


def test_unknown_permissions_are_validation_failed(tmp_path: Path) -> None:
    folder = _plugin_dir(tmp_path, ["internet"])
    with Runtime({"plugins": {"guarded": {"path": str(folder)}}}, load_builtins=False) as rt:
        error = rt.load_report.failed["guarded"]
        assert (
            error.code == "validation_failed" and "unknown permission 'internet'" in error.message
        )


def test_manifest_permissions_are_checked_before_the_import(tmp_path: Path) -> None:
    folder = _plugin_dir(tmp_path)
    (folder / "plugin.yaml").write_text(
        "name: guarded\nversion: 1.0.0\nmodule: impl:ThePlugin\npermissions: [subprocess]\n"
    )
    config = _config(folder, policy="off", grants={"*": []})
    with Runtime(config, load_builtins=False) as runtime:
        assert runtime.load_report.failed["guarded"].code == "permission_denied"
    assert _marks(folder) == set()


def _fake_distribution(site: Path) -> None:
    files = {
        "signedplug/__init__.py": textwrap.dedent(
            """
            class ThePlugin:
                def init(self, config):
                    return {}

                def get_metadata(self, state):
                    return {"name": "signedplug", "version": "1.0", "api_version": 1}
            """
        ).encode(),
        "signedplug/data.txt": b"package data\n",
    }
    install_distribution(site, "signedplug", files)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake distribution installed in a folder on ``sys.path`` (and forgotten after:
    its modules and any finder serving its verified bytes)."""
    folder = tmp_path / "site"
    _fake_distribution(folder)
    monkeypatch.syspath_prepend(str(folder))
    unload_modules("signedplug")
    yield folder
    unload_modules("signedplug")


def _require(keys: tuple[Path, Path]) -> dict[str, Any]:
    return {
        "plugins": {"signedplug": {"module": "signedplug:ThePlugin"}},
        "security": {"signature_policy": "require", "trusted_keys": [str(keys[1])]},
    }


def test_plugins_from_distributions_are_verified_through_their_record(
    site: Path, keys: tuple[Path, Path]
) -> None:
    config = _require(keys)
    with Runtime(config, load_builtins=False) as runtime:
        assert runtime.load_report.failed["signedplug"].code == "signature_invalid"
    signing.sign_distribution("signedplug", keys[0])
    with Runtime(config, load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        assert runtime.plugins.get_plugin("signedplug").signature == "valid"


def test_a_signature_copied_from_another_distribution_is_invalid(
    site: Path, keys: tuple[Path, Path]
) -> None:
    """Review finding: the signed name was never compared with the distribution."""
    signing.sign_distribution("signedplug", keys[0])
    info = site / "signedplug-1.0.dist-info"
    other = site / "otherplug-1.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: otherplug\nVersion: 1.0\n")
    (other / "RECORD").write_text((info / "RECORD").read_text())
    (other / signing.SIGNATURE_FILE).write_text((info / signing.SIGNATURE_FILE).read_text())
    result = signing.verify_distribution("otherplug", [keys[1]])
    assert result.status is signing.SignatureStatus.INVALID and "signedplug" in result.detail


def test_a_module_shadowing_the_verified_distribution_is_refused(
    site: Path, tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: the distribution was verified but the import took another file."""
    signing.sign_distribution("signedplug", keys[0])
    shadow = tmp_path / "shadow"
    (shadow / "signedplug").mkdir(parents=True)
    (shadow / "signedplug" / "__init__.py").write_text("raise SystemExit('shadow ran')\n")
    monkeypatch.syspath_prepend(str(shadow))
    config = _require(keys)
    with Runtime(config, load_builtins=False) as runtime:
        error = runtime.load_report.failed["signedplug"]
        assert error.code == "signature_invalid" and "shadowed" in error.message


def test_reloading_a_module_plugin_passes_the_signature_gate_again(
    site: Path, keys: tuple[Path, Path]
) -> None:
    """Review finding: a reload re-ran the source from disk without the gate."""
    signing.sign_distribution("signedplug", keys[0])
    config = _require(keys)
    with Runtime(config, load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        source = site / "signedplug" / "__init__.py"
        source.write_text(source.read_text() + "\nTAMPERED = True\n")
        with pytest.raises(Exception) as info:
            runtime.plugins.reload_plugin("signedplug")
        assert getattr(info.value, "code", None) == "signature_invalid"
        assert runtime.plugins.get_plugin("signedplug").status.value == "active"


def test_a_planted_pyc_in_a_signed_distribution_never_runs(
    site: Path, keys: tuple[Path, Path]
) -> None:
    import subprocess
    import sys

    signing.sign_distribution("signedplug", keys[0])
    source = site / "signedplug" / "__init__.py"
    plant_bytecode(source, source.read_text() + "\nPLANTED = True\n")
    # The planted file is what a plain import runs (so this test can fail) ...
    plain = subprocess.run(
        [sys.executable, "-c", "import signedplug; print(getattr(signedplug, 'PLANTED', 0))"],
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert plain.stdout.strip() == "True"
    # ... and the verification still passes: RECORD does not hash bytecode.
    assert signing.verify_distribution("signedplug", [keys[1]]).ok
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        module = sys.modules["signedplug"]
        assert not hasattr(module, "PLANTED")
        assert module.__file__ == str(source.resolve())
        target = runtime.plugins.get_plugin("signedplug").adapter
        assert type(getattr(target, "target", None)).__module__ == "signedplug"


def test_a_distribution_file_swapped_after_the_check_is_not_what_runs(
    site: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.resources
    import sys

    signing.sign_distribution("signedplug", keys[0])
    source = site / "signedplug" / "__init__.py"
    verify = signing.verify_distribution

    def verify_then_swap(name: str, trusted: Any) -> signing.Verification:
        result = verify(name, trusted)
        source.write_text(source.read_text() + "\nSWAPPED = True\n")  # the race, won
        return result

    monkeypatch.setattr(signing, "verify_distribution", verify_then_swap)
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        assert not hasattr(sys.modules["signedplug"], "SWAPPED")
        # package data is still found, in the package's folder
        data = importlib.resources.files("signedplug").joinpath("data.txt").read_text()
        assert data == "package data\n"


SEALED = """
TEXT = "signed"


class ThePlugin:
    def init(self, config):
        return {}

    def get_metadata(self, state):
        return {"name": "sealed", "version": "1.0.0", "api_version": 1, "description": TEXT}
"""


def test_an_isolated_child_imports_the_verified_bytes_of_a_signed_directory(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files are swapped between the host's check and the child's import: the child
    still runs what was verified (its bootstrap frame carries the bytes)."""
    folder = tmp_path / "sealed"
    folder.mkdir()
    (folder / "plugin.yaml").write_text("name: sealed\nversion: 1.0.0\nmodule: impl:ThePlugin\n")
    (folder / "impl.py").write_text(SEALED)
    sign_directory(folder, keys[0])
    verify = signing.verify_directory

    def verify_then_swap(directory: Any, trusted: Any) -> signing.Verification:
        result = verify(directory, trusted)
        (folder / "impl.py").write_text(SEALED.replace('"signed"', '"swapped"'))
        (folder / "extra.py").write_text("raise SystemExit('unverified')\n")
        return result

    monkeypatch.setattr(signing, "verify_directory", verify_then_swap)
    config = {
        "plugins": {"sealed": {"path": str(folder), "isolation": "process"}},
        "security": {"signature_policy": "require", "trusted_keys": [str(keys[1])]},
    }
    with Runtime(config, load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        record = runtime.plugins.get_plugin("sealed")
        assert record.signature == "valid" and record.isolation == "process"
        assert record.metadata is not None and record.metadata.description == "signed"


_PLANTED = """

_original = ThePlugin.get_metadata


def _planted(self, state):
    answer = _original(self, state)
    answer["description"] = "planted"
    return answer


ThePlugin.get_metadata = _planted
"""


def test_an_isolated_child_never_runs_a_planted_pyc_of_a_signed_distribution(
    site: Path, keys: tuple[Path, Path]
) -> None:
    signing.sign_distribution("signedplug", keys[0])
    source = site / "signedplug" / "__init__.py"
    plant_bytecode(source, source.read_text() + _PLANTED)
    config = _require(keys)
    config["plugins"]["signedplug"]["isolation"] = "process"
    with Runtime(config, load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        record = runtime.plugins.get_plugin("signedplug")
        assert record.isolation == "process" and record.signature == "valid"
        assert record.metadata is not None and record.metadata.description == ""
    # the same plugin, unsigned policy: the child imports from disk and the .pyc runs
    config["security"]["signature_policy"] = "off"
    with Runtime(config, load_builtins=False) as runtime:
        record = runtime.plugins.get_plugin("signedplug")
        assert record.metadata is not None and record.metadata.description == "planted"


def test_verified_sources_too_big_for_the_bootstrap_frame_are_refused() -> None:
    from pipeline_ex.errors import PluginError
    from pipeline_ex.plugins.isolation import IsolationSpec, ProcessPlugin, wire
    from pipeline_ex.plugins.isolation.verified_sources import VerifiedSources

    sources = VerifiedSources("big", {"__init__.py": b"#" * wire.MAX_FRAME}, "/nowhere")
    with pytest.raises(PluginError) as info:
        ProcessPlugin(IsolationSpec(plugin="big", reference="big", sources=(sources,)))
    assert info.value.code == "validation_failed" and "bootstrap frame" in info.value.message


def test_a_signed_directory_never_reuses_modules_another_config_imported_from_disk(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second review: a ``require`` Runtime reused the private package an unsigned Runtime
    had imported from a tampered file (same directory, same private name)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # else the check sees __pycache__
    folder = tmp_path / "sealed"
    folder.mkdir()
    (folder / "plugin.yaml").write_text("name: sealed\nversion: 1.0.0\nmodule: impl:ThePlugin\n")
    (folder / "impl.py").write_text(SEALED)
    sign_directory(folder, keys[0])
    (folder / "impl.py").write_text(SEALED.replace('"signed"', '"tampered"'))
    plain = {"plugins": {"sealed": {"path": str(folder)}}}
    with Runtime(plain, load_builtins=False) as unsigned:
        record = unsigned.plugins.get_plugin("sealed")
        assert record.metadata is not None and record.metadata.description == "tampered"
        (folder / "impl.py").write_text(SEALED)  # the signature matches again
        config = {
            **plain,
            "security": {"signature_policy": "require", "trusted_keys": [str(keys[1])]},
        }
        with Runtime(config, load_builtins=False) as signed:
            assert signed.load_report.ok, signed.load_report.failed
            record = signed.plugins.get_plugin("sealed")
            assert record.metadata is not None and record.metadata.description == "signed"
