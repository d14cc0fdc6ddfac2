"""The entry-point index's cache folder: XDG, a read-only folder, a broken cache file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_ex.plugins import discovery
from pipeline_ex.plugins.discovery import EntryPointIndex, default_cache_dir


def test_cache_dir_respects_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_EX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "pipeline-ex"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says: ignore
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "pipeline-ex"
    monkeypatch.setenv("PIPELINE_EX_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"


def test_cache_dir_without_any_home_does_not_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_EX_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert default_cache_dir() == discovery.fallback_cache_dir()


def _read_only_dir(tmp_path: Path) -> Path:
    """A cache folder nobody can create, root included: its parent is a regular file."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    return blocker / "cache"


def test_unwritable_cache_dir_neither_fails_nor_rescans_every_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans: list[int] = []
    real_scan = EntryPointIndex._scan

    def counting_scan(self: EntryPointIndex) -> dict[str, discovery.EntryPointInfo]:
        scans.append(1)
        return real_scan(self)

    monkeypatch.setattr(EntryPointIndex, "_scan", counting_scan)
    read_only, fallback = _read_only_dir(tmp_path), tmp_path / "fallback"
    first = EntryPointIndex(cache_dir=read_only, fallback_dir=fallback)
    assert "text_tools" in first.names()
    assert first.rescanned and first.written_to == first.fallback_file
    assert not read_only.exists()

    writes: list[Path] = []
    real_write = discovery._write_atomically
    monkeypatch.setattr(
        discovery,
        "_write_atomically",
        lambda d, f, p, *, mode: writes.append(f) or real_write(d, f, p, mode=mode),
    )
    for _ in range(3):  # three more starts: served from the fallback, no write attempted
        again = EntryPointIndex(cache_dir=read_only, fallback_dir=fallback)
        assert again.names() == first.names() and not again.rescanned
    assert len(scans) == 1 and writes == []


def test_no_writable_cache_anywhere_still_discovers(tmp_path: Path) -> None:
    index = EntryPointIndex(
        cache_dir=_read_only_dir(tmp_path), fallback_dir=tmp_path / "not-a-folder" / "fb"
    )
    assert "text_tools" in index.names()
    assert index.written_to is None


def test_fallback_dir_writable_by_others_is_not_trusted(tmp_path: Path) -> None:
    """Another user could plant an index there, and index values get imported."""
    fallback = tmp_path / "shared"
    fallback.mkdir()
    fallback.chmod(0o777)
    index = EntryPointIndex(cache_dir=_read_only_dir(tmp_path), fallback_dir=fallback)
    index.fallback_file.write_text(
        json.dumps(
            {
                "key": discovery.environment_key(),
                "entries": [{"name": "text_tools", "value": "evil:X", "distribution": None}],
            }
        )
    )
    entry = index.get("text_tools")
    assert entry is not None and entry.value == "pipeline_ex_text_tools:TextToolsPlugin"
    assert index.rescanned and index.written_to is None


@pytest.mark.parametrize("content", ["[1, 2]", "{", '{"key": null}', '"text"'])
def test_malformed_cache_file_is_a_miss_not_an_error(tmp_path: Path, content: str) -> None:
    index = EntryPointIndex(cache_dir=tmp_path / "cache", fallback_dir=tmp_path / "fb")
    index.cache_dir.mkdir()
    index.cache_file.write_text(content)
    assert "text_tools" in index.names() and index.rescanned
    assert index.written_to == index.cache_file
    assert not list(index.cache_dir.glob("*.tmp"))


def test_environment_key_follows_every_path_entry_and_its_mtime(tmp_path: Path) -> None:
    import os

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    paths = [str(first), str(second)]
    key = discovery.environment_key(paths)
    assert discovery.environment_key(list(paths)) == key  # same environment, same key
    assert discovery.environment_key([str(first)]) != key  # an entry removed
    assert discovery.environment_key([*paths, str(tmp_path / "missing")]) != key  # added
    assert discovery.environment_key(paths[::-1]) != key  # order decides what is imported
    stat = os.stat(second)
    os.utime(second, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert discovery.environment_key(paths) != key  # a distribution installed in b
    # a newline in a path cannot make two different environments read alike
    assert discovery.environment_key(["x\n/y"]) != discovery.environment_key(["x", "/y"])
