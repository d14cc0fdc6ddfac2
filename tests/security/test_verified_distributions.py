"""A plugin from a signed installed distribution, under ``signature_policy: require``, runs
the bytes its RECORD check hashed: never a planted ``.pyc``, never a file swapped after the
check, whatever the layout (symlinked package, sibling top-level packages, namespace
folders, a module imported before the check) and across reloads.  Most cases come from a
review that found each of them running planted bytecode while the verdict said ``valid``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installed_distribution import install_distribution, write_record
from pipeline_ex import Runtime
from pipeline_ex.plugins import signing
from pipeline_ex.plugins.loader import unload_modules
from pipeline_ex.plugins.verified_import import IMPORTS
from planted_bytecode import plant_bytecode

PLUGIN = textwrap.dedent(
    """
    class ThePlugin:
        def init(self, config):
            return {}

        def get_metadata(self, state):
            return {"name": "signedplug", "version": "1.0", "api_version": 1}
    """
)
TOPS = ("signedplug", "signedplug_helpers", "signedplug_impl")


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    for top in TOPS:
        unload_modules(top)
    yield
    for top in TOPS:
        unload_modules(top)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return signing.generate_keypair(tmp_path / "keys")


def _install(site: Path, files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution ``signedplug`` with ``files``, its RECORD, on ``sys.path``."""
    files = {**files, "signedplug-1.0.dist-info/METADATA": _METADATA}
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    _record(site)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


_METADATA = "Metadata-Version: 2.1\nName: signedplug\nVersion: 1.0\n"


def _signed(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> Path:
    """The distribution installed in ``tmp_path/site`` and signed with ``keys``."""
    site = tmp_path / "site"
    _install(site, files, monkeypatch)
    signing.sign_distribution("signedplug", keys[0])
    return site


def _record(site: Path, *, leave_out: tuple[str, ...] = (), unhashed: tuple[str, ...] = ()) -> None:
    """RECORD for the files on disk (what a wheel install writes; compiled files left out,
    as pip lists them without a hash, like ``unhashed``)."""
    on_disk = [
        rel
        for path in sorted(site.rglob("*"))
        if not path.is_dir()
        and "__pycache__" not in (rel := path.relative_to(site).as_posix())
        and not rel.endswith(("RECORD", signing.SIGNATURE_FILE))
        and rel not in leave_out
    ]
    write_record(site, "signedplug-1.0.dist-info", on_disk, unhashed=unhashed)


def _require(keys: tuple[Path, Path], module: str = "signedplug:ThePlugin") -> dict[str, Any]:
    return {
        "plugins": {"signedplug": {"module": module}},
        "security": {"signature_policy": "require", "trusted_keys": [str(keys[1])]},
    }


def _module_of_plugin(runtime: Runtime) -> Any:
    adapter: Any = runtime.plugins.get_plugin("signedplug").adapter
    return sys.modules[type(adapter.target).__module__]


def test_a_symlinked_package_is_still_served_from_the_verified_bytes(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _signed(tmp_path, keys, monkeypatch, {"signedplug/__init__.py": PLUGIN})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(str(site / "signedplug"), str(elsewhere / "signedplug"))
    (site / "signedplug").symlink_to(elsewhere / "signedplug", target_is_directory=True)
    plant_bytecode(site / "signedplug" / "__init__.py", PLUGIN + "\nPLANTED = True\n")
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        assert not hasattr(sys.modules["signedplug"], "PLANTED")


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("leave_out", "not among the verified files"),  # not in RECORD at all
        ("unhashed", "not among the verified files"),  # listed without a hash
    ],
)
def test_a_plugin_module_the_record_does_not_hash_is_refused_not_read_from_disk(
    tmp_path: Path,
    keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    said: str,
) -> None:
    site = tmp_path / "site"
    _install(site, {"signedplug/__init__.py": PLUGIN, "signedplug/other.py": ""}, monkeypatch)
    _record(site, **{how: ("signedplug/__init__.py",)})
    signing.sign_distribution("signedplug", keys[0])
    with Runtime(_require(keys), load_builtins=False) as runtime:
        error = runtime.load_report.failed["signedplug"]
        assert error.code == "signature_invalid" and said in error.message
    assert "signedplug" not in sys.modules


def test_sibling_top_level_packages_of_the_distribution_are_served_too(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    files = {
        "signedplug/__init__.py": "import signedplug_helpers\n" + PLUGIN,
        "signedplug_helpers/__init__.py": "HELPER = 1\n",
    }
    _install(site, files, monkeypatch)
    signing.sign_distribution("signedplug", keys[0])
    plant_bytecode(site / "signedplug_helpers" / "__init__.py", "HELPER = 1\nPLANTED = True\n")
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        assert not hasattr(sys.modules["signedplug_helpers"], "PLANTED")


def test_a_module_imported_from_disk_before_the_check_is_refused_not_reused(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first Runtime without a policy imports the planted bytecode; a later one under
    ``require`` in the same process must not reuse that module, nor take it away from
    whoever runs it (a second review): it refuses, naming the module."""
    site = _signed(tmp_path, keys, monkeypatch, {"signedplug/__init__.py": PLUGIN})
    plant_bytecode(site / "signedplug" / "__init__.py", PLUGIN + "\nPLANTED = True\n")
    unsigned = {"plugins": {"signedplug": {"module": "signedplug:ThePlugin"}}}
    with Runtime(unsigned, load_builtins=False) as first:
        planted = _module_of_plugin(first)
        assert hasattr(planted, "PLANTED")  # what a plain import runs
        with Runtime(_require(keys), load_builtins=False) as second:
            error = second.load_report.failed["signedplug"]
            assert error.code == "signature_invalid"
            assert "module signedplug is already imported" in error.message
        assert sys.modules["signedplug"] is planted  # the first one's, untouched
    assert IMPORTS.serving("signedplug") is None


def test_reloads_run_the_verified_bytes_of_the_package_and_of_a_sibling(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    files = {
        "signedplug/__init__.py": "from signedplug_impl import ThePlugin\n",
        "signedplug_impl/__init__.py": "from . import sub\n" + PLUGIN,
        "signedplug_impl/sub.py": "X = 1\n",
    }
    _install(site, files, monkeypatch)
    signing.sign_distribution("signedplug", keys[0])
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        for rel in ("signedplug_impl/__init__.py", "signedplug_impl/sub.py"):
            source = site / rel
            plant_bytecode(source, source.read_text() + "\nPLANTED = True\n")
        runtime.plugins.reload_plugin("signedplug")
        fresh = _module_of_plugin(runtime)
        assert fresh.__name__.startswith("signedplug_impl__reload_")
        assert not hasattr(fresh, "PLANTED") and not hasattr(fresh.sub, "PLANTED")
        assert runtime.plugins.get_plugin("signedplug").signature == "valid"


def test_a_refused_reload_leaves_the_running_version_importing_as_before(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    init = PLUGIN + "\ndef lazy():\n    from . import later\n    return later.VALUE\n"
    _install(
        site, {"signedplug/__init__.py": init, "signedplug/later.py": "VALUE = 1\n"}, monkeypatch
    )
    signing.sign_distribution("signedplug", keys[0])
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        # the same package, without its distribution, earlier on sys.path: verified, then
        # refused as shadowed
        shadow = tmp_path / "shadow"
        shutil.copytree(site / "signedplug", shadow / "signedplug")
        monkeypatch.syspath_prepend(str(shadow))
        importlib.invalidate_caches()
        with pytest.raises(Exception) as refused:
            runtime.plugins.reload_plugin("signedplug")
        assert getattr(refused.value, "code", None) == "signature_invalid"
        assert "shadowed" in str(refused.value)
        assert runtime.plugins.get_plugin("signedplug").status.value == "active"
        assert sys.modules["signedplug"].lazy() == 1  # a lazy import of the running version


def test_the_served_package_behaves_like_one_on_disk_and_refuses_unverified_modules(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    init = PLUGIN + textwrap.dedent(
        """
        def lazy():
            from . import later
            return later.VALUE

        def deep():
            import signedplug.nsdir.mod as mod  # a folder without __init__.py
            return mod.VALUE
        """
    )
    files = {
        "signedplug/__init__.py": init,
        "signedplug/later.py": "VALUE = 'verified'\n",
        "signedplug/nsdir/mod.py": "VALUE = 'namespace'\n",
        "signedplug/data.txt": "package data\n",
    }
    _install(site, files, monkeypatch)
    signing.sign_distribution("signedplug", keys[0])
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        package = sys.modules["signedplug"]
        (site / "signedplug" / "later.py").write_text("VALUE = 'swapped'\n")
        (site / "signedplug" / "added.py").write_text("VALUE = 'unverified'\n")
        assert package.lazy() == "verified"
        assert package.deep() == "namespace"
        assert "verified" in inspect.getsource(sys.modules["signedplug.later"])
        assert pkgutil.get_data("signedplug", "data.txt") == b"package data\n"
        assert "later" in {m.name for m in pkgutil.iter_modules(package.__path__)}
        with pytest.raises(ModuleNotFoundError, match="not among the verified files"):
            importlib.import_module("signedplug.added")


def test_the_finders_go_out_of_force_when_the_runtime_closes(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _signed(tmp_path, keys, monkeypatch, {"signedplug/__init__.py": PLUGIN})
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        assert IMPORTS.serving("signedplug") is not None
    assert IMPORTS.serving("signedplug") is None
    (site / "signedplug" / "newmod.py").write_text("NEW = 1\n")  # an upgrade, no policy now
    assert importlib.import_module("signedplug.newmod").NEW == 1


def test_a_reload_of_a_re_signed_release_imports_its_verified_bytes(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _signed(tmp_path, keys, monkeypatch, {"signedplug/__init__.py": PLUGIN})
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        source = site / "signedplug" / "__init__.py"
        source.write_text(source.read_text() + "\nRELEASE = 2\n")
        _record(site)  # the new release, installed and signed
        signing.sign_distribution("signedplug", keys[0])
        plant_bytecode(source, source.read_text() + "\nPLANTED = True\n")
        runtime.plugins.reload_plugin("signedplug")
        fresh = _module_of_plugin(runtime)
        assert fresh.__name__.startswith("signedplug__reload_")
        assert fresh.RELEASE == 2 and not hasattr(fresh, "PLANTED")


LAZY = PLUGIN + "\n    def lazy(self):\n        from . import lazy\n        return lazy.VALUE\n"


def test_two_runtimes_loading_one_distribution_keep_each_others_imports_verified(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second review: the second Runtime closing put the first one's sources out of force,
    and the first one's lazy import then ran a planted .pyc."""
    site = tmp_path / "site"
    files = {"signedplug/__init__.py": LAZY, "signedplug/lazy.py": "VALUE = 'verified'\n"}
    _install(site, files, monkeypatch)
    signing.sign_distribution("signedplug", keys[0])
    plant_bytecode(site / "signedplug" / "lazy.py", "VALUE = 'planted'\n")
    with Runtime(_require(keys), load_builtins=False) as first:
        with Runtime(_require(keys), load_builtins=False) as second:
            assert second.load_report.ok, second.load_report.failed
        adapter: Any = first.plugins.get_plugin("signedplug").adapter
        assert adapter.target.lazy() == "verified"
    assert IMPORTS.serving("signedplug") is None


def test_reloads_repeat_and_a_subpackage_plugin_keeps_its_own_imports(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second review: a second reload was refused (the copy's name is not served), and a
    reloaded subpackage could not import its own submodules (the package's sources took
    the copy's names)."""
    site = tmp_path / "site"
    files = {
        "signedplug/__init__.py": "",
        "signedplug/sub/__init__.py": LAZY,
        "signedplug/sub/lazy.py": "VALUE = 'verified'\n",
    }
    _install(site, files, monkeypatch)
    signing.sign_distribution("signedplug", keys[0])
    with Runtime(_require(keys, module="signedplug.sub:ThePlugin"), load_builtins=False) as rt:
        assert rt.load_report.ok, rt.load_report.failed
        for _ in range(3):
            rt.plugins.reload_plugin("signedplug")
            adapter: Any = rt.plugins.get_plugin("signedplug").adapter
            assert type(adapter.target).__module__.startswith("signedplug.sub__reload_")
            assert adapter.target.lazy() == "verified"


def test_a_namespace_shared_with_another_distribution_is_not_claimed(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second review: the plugin's distribution claimed all of ``acme``, refusing another
    distribution's ``acme.other``."""
    other = tmp_path / "other"
    (other / "acme").mkdir(parents=True)
    (other / "acme" / "other.py").write_text("WHO = 'other'\n")
    monkeypatch.syspath_prepend(str(other))
    site = _signed(tmp_path, keys, monkeypatch, {"acme/signedplug.py": PLUGIN})
    # a third review: an __init__.py planted in our folder turned the namespace into a
    # regular package whose code ran on the plugin's import
    (site / "acme" / "__init__.py").write_text("PLANTED = True\n")
    try:
        config = _require(keys, module="acme.signedplug:ThePlugin")
        with Runtime(config, load_builtins=False) as runtime:
            assert runtime.load_report.ok, runtime.load_report.failed
            namespace = IMPORTS.serving("acme")
            assert namespace is not None and namespace.namespace and not namespace.strict
            assert IMPORTS.serving("acme.signedplug") is not None
            assert not hasattr(sys.modules["acme"], "PLANTED")
            assert importlib.import_module("acme.other").WHO == "other"
    finally:
        unload_modules("acme")


def test_a_name_made_to_look_shared_is_still_served_from_the_verified_bytes(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Third review: a planted distribution claiming ``signedplug`` too made it 'shared',
    and it was then imported from disk (its planted bytecode included)."""
    site = _signed(tmp_path, keys, monkeypatch, {"signedplug/__init__.py": PLUGIN})
    squatter = tmp_path / "later"
    (squatter / "evil-1.0.dist-info").mkdir(parents=True)
    (squatter / "evil-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n"
    )
    (squatter / "evil-1.0.dist-info" / "top_level.txt").write_text("signedplug\n")
    # its RECORD claims a file it planted in our package (fifth review: believed, it let
    # that file be imported from disk as "another distribution's module")
    (squatter / "evil-1.0.dist-info" / "RECORD").write_text("signedplug/added.py,,\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(squatter)])
    importlib.invalidate_caches()
    plant_bytecode(site / "signedplug" / "__init__.py", PLUGIN + "\nPLANTED = True\n")
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        served = IMPORTS.serving("signedplug")
        assert served is not None and not served.strict  # taken as shared, still served
        assert not hasattr(sys.modules["signedplug"], "PLANTED")
        # the squatter ships no module there: a file planted in the package is refused
        (site / "signedplug" / "added.py").write_text("VALUE = 'unverified'\n")
        with pytest.raises(ModuleNotFoundError, match="not among the verified files"):
            importlib.import_module("signedplug.added")


def test_a_reload_may_not_switch_another_plugins_verified_bytes(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Third review: the latest hold won process-wide, so a Runtime trusting a second key
    could, by reloading, switch another Runtime's plugin to bytes only that key signed."""
    site = tmp_path / "site"
    files = {"signedplug/__init__.py": LAZY, "signedplug/lazy.py": "VALUE = 'first'\n"}
    _install(site, files, monkeypatch)
    signing.sign_distribution("signedplug", keys[0])
    other_keys = signing.generate_keypair(tmp_path / "other_keys")
    wider = _require(keys)
    wider["security"]["trusted_keys"].append(str(other_keys[1]))
    with (
        Runtime(_require(keys), load_builtins=False) as narrow,
        Runtime(wider, load_builtins=False) as broad,
    ):
        assert narrow.load_report.ok and broad.load_report.ok
        (site / "signedplug" / "lazy.py").write_text("VALUE = 'second'\n")
        _record(site)
        signing.sign_distribution("signedplug", other_keys[0])
        with pytest.raises(Exception) as refused:
            broad.plugins.reload_plugin("signedplug")
        assert getattr(refused.value, "code", None) == "signature_invalid"
        adapter: Any = narrow.plugins.get_plugin("signedplug").adapter
        assert adapter.target.lazy() == "first"


def test_sources_put_in_force_for_an_import_that_failed_are_let_go(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _signed(tmp_path, keys, monkeypatch, {"signedplug/__init__.py": PLUGIN})
    with Runtime(_require(keys, module="signedplug:NoSuchClass"), load_builtins=False) as rt:
        assert rt.load_report.failed["signedplug"].code == "validation_failed"
        assert IMPORTS.serving("signedplug") is None


def test_a_module_only_a_namespace_or_shared_package_covers_is_refused(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fourth review: an unsigned module under a served namespace, or under a package
    another distribution also claims, passed as the signed distribution's."""
    site = _signed(tmp_path, keys, monkeypatch, {"acme/signedplug.py": PLUGIN})
    (site / "acme" / "unsigned.py").write_text(PLUGIN)  # no distribution at all
    try:
        with Runtime(_require(keys, module="acme.unsigned:ThePlugin"), load_builtins=False) as rt:
            error = rt.load_report.failed["signedplug"]
            assert error.code == "signature_invalid"
            assert "'acme.unsigned' is not among the verified files" in error.message
        assert "acme.unsigned" not in sys.modules
    finally:
        unload_modules("acme")


def test_a_namespace_never_displaces_a_package_with_code_and_blocks_no_reload() -> None:
    """Fourth review: a second signed distribution shipping a module into another one's
    package, without ``__init__.py``, took that package over as an empty namespace; and
    namespaces of two distributions refused each other's reloads."""
    from pipeline_ex.plugins.isolation.verified_sources import VerifiedImports, VerifiedSources

    imports = VerifiedImports()
    code = VerifiedSources("pkg", {"__init__.py": b""}, "/a", root_file="__init__.py", token="a")
    namespace = VerifiedSources("pkg", {}, "/b", token="b", strict=False, namespace=True)
    imports.hold("first", (code,))
    imports.hold("second", (namespace,))
    assert imports.serving("pkg") is code
    assert imports.held_otherwise((namespace,), besides="second") is None
    other_namespace = VerifiedSources("pkg", {}, "/c", token="c", strict=False, namespace=True)
    assert imports.held_otherwise((other_namespace,), besides="third") is None
    newer = VerifiedSources("pkg", {"__init__.py": b"x"}, "/a", root_file="__init__.py", token="d")
    assert imports.held_otherwise((newer,), besides="third") is code
    imports.release("first")
    assert imports.serving("pkg") is namespace
    sys.meta_path.remove(imports)


def test_what_is_served_where_another_trusted_distribution_owns_the_package() -> None:
    """Fifth review: an add-on shipping a module into another distribution's regular
    package must not serve that package as an empty namespace; and a verified native
    extension is a verified module (a plugin class may live in one)."""
    from importlib.machinery import EXTENSION_SUFFIXES

    from pipeline_ex.plugins.verified_import import distribution_sources

    tree = {"signedplug/extras.py": b"X = 1\n"}
    alone = distribution_sources(tree, Path("/site"))
    assert alone["signedplug"].namespace and "signedplug.extras" in alone
    beside = distribution_sources(tree, Path("/site"), packages_elsewhere=frozenset({"signedplug"}))
    assert "signedplug" not in beside and "signedplug.extras" in beside
    native = f"acme/_native{EXTENSION_SUFFIXES[0]}"
    served = distribution_sources({native: b"", "acme/plug.py": b""}, Path("/site"))
    assert served["acme"].serves("acme._native") and not served["acme"].serves("acme.other")


def test_an_unhashed_row_in_a_trusted_record_declares_nothing(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixth review: a row without a hash, added to another trusted distribution's
    RECORD, is covered by no signature; it made a planted module 'theirs'."""
    site = _signed(tmp_path, keys, monkeypatch, {"signedplug/__init__.py": PLUGIN})
    other = tmp_path / "other"
    install_distribution(other, "helperdist", {"helperdist/__init__.py": b""})
    record = other / "helperdist-1.0.dist-info" / "RECORD"
    monkeypatch.setattr(sys, "path", [*sys.path, str(other)])
    importlib.invalidate_caches()
    signing.sign_distribution("helperdist", keys[0])  # trusted, and still valid after:
    record.write_text(record.read_text() + "signedplug/_accel.py,,\n")
    assert signing.verify_distribution("helperdist", [keys[1]]).ok
    (site / "signedplug" / "_accel.py").write_text("VALUE = 'planted'\n")
    with Runtime(_require(keys), load_builtins=False) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        with pytest.raises(ModuleNotFoundError, match="not among the verified files"):
            importlib.import_module("signedplug._accel")
