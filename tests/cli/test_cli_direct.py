"""The listing commands answered without typer (``pipeline_ex.cli.direct``): which argument
shapes it takes, and that its output, stderr and exit status equal typer's for each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_ex.cli.direct import Listing, parse

SCRIPT = Path(sys.executable).parent / "pipeline-ex"
TYPER_WAY = "import sys; from pipeline_ex.cli.app import main; sys.argv[0] = 'pipeline-ex'; main()"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_EX_PLUGINS")}
    env.pop("COLUMNS", None)
    env.update(extra)
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["steps"], Listing("steps", None, False)),
        (["providers", "--json"], Listing("providers", None, True)),
        (["steps", "--plugins", "cfg.yaml", "--json"], Listing("steps", Path("cfg.yaml"), True)),
        (["steps", "--json", "--plugins=./cfg.yaml"], Listing("steps", Path("cfg.yaml"), True)),
        (["steps", "--plugins", "missing.yaml"], Listing("steps", Path("missing.yaml"), False)),
    ],
)
def test_plain_listings_are_taken(
    argv: list[str], expected: Listing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("plugins: {}\n")
    assert parse(argv, {}) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--version"],
        ["run", "x.yaml"],
        ["steps", "--help"],
        ["steps", "-h"],
        ["-v", "steps"],
        ["steps", "--json", "--json"],
        ["steps", "--plugins", "a.yaml", "--plugins", "a.yaml"],
        ["steps", "--plugins"],
        ["steps", "--plugins", "--json"],
        ["steps", "--plugins="],
        ["steps", "--plugins", "folder"],  # typer says "is a directory"
        ["steps", "extra"],
        ["steps", "--", "--json"],
        ["steps", "--jso"],
    ],
)
def test_everything_else_is_left_to_typer(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("plugins: {}\n")
    (tmp_path / "folder").mkdir()
    assert parse(argv, {}) is None


def test_the_environment_is_read_as_typer_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    assert parse(["steps"], {"PIPELINE_EX_PLUGINS": ""}) == Listing("steps", None, False)
    assert parse(["steps"], {"PIPELINE_EX_PLUGINS": "c.yaml"}) == Listing(
        "steps", Path("c.yaml"), False
    )
    assert parse(["steps"], {"PIPELINE_EX_PLUGINS": "folder"}) is None
    assert parse(["steps"], {"_PIPELINE_EX_COMPLETE": "bash_complete"}) is None


@pytest.mark.slow  # two interpreter starts per case
@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
@pytest.mark.parametrize(
    "args",
    [
        ["steps"],
        ["steps", "--json"],
        ["providers"],
        ["providers", "--json", "--plugins", "good.yaml"],
        ["steps", "--plugins=good.yaml"],
        ["steps", "--plugins", "bad.yaml"],  # schema_invalid: exit 2
        ["steps", "--plugins", "ghost.yaml"],  # a plugin fails to load: a warning line
        ["steps", "--plugins", "missing.yaml"],
        ["steps", "--plugins", "folder"],  # typer's usage error, through the direct way in
    ],
)
def test_direct_and_typer_ways_print_the_same(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("plugins:\n  text_tools:\n    module: text_tools\n")
    (tmp_path / "bad.yaml").write_text("autoload: yes please\nplugins: {}\n")
    (tmp_path / "ghost.yaml").write_text("plugins:\n  ghost:\n    module: ghost_module_xyz\n")
    (tmp_path / "folder").mkdir()
    env = _env()
    direct = _run([str(SCRIPT), *args], tmp_path, env)
    typer_way = _run([sys.executable, "-c", TYPER_WAY, *args], tmp_path, env)
    assert (direct.returncode, direct.stdout, direct.stderr) == (
        typer_way.returncode,
        typer_way.stdout,
        typer_way.stderr,
    )
    assert "Traceback" not in direct.stderr


def test_steps_does_not_import_typer_or_pydantic(tmp_path: Path) -> None:
    code = (
        "import sys; sys.argv = ['pipeline-ex', 'steps']\n"
        "from pipeline_ex.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in ('typer', 'click', 'pydantic') if m in sys.modules), "
        "file=sys.stderr)"
    )
    done = _run([sys.executable, "-c", code], tmp_path, _env())
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert "parallel_claude" in done.stdout
