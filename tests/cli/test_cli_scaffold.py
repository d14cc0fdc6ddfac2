"""``pipeline-ex plugins new``: the scaffold is written, refuses what it must, and the plugin
it writes passes its own tests, lint and mypy, and installs as a discoverable entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from pipeline_ex.cli.scaffold import ScaffoldError, Style, plan_files, write_plugin

Invoke = Callable[..., Result]

ROOT = Path(__file__).resolve().parents[2]
STYLES = ["class", "module"]


def _env(tmp_path: Path, pythonpath: str = "") -> dict[str, str]:
    return {
        **os.environ,
        "PIPELINE_EX_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, str(ROOT / "src")) if p),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)


def _generate(cli: Invoke, tmp_path: Path, name: str, style: str) -> Path:
    result = cli("plugins", "new", name, "--style", style, "--dir", tmp_path / "gen")
    assert result.exit_code == 0, result.stderr
    assert f"created {tmp_path / 'gen' / name}" in result.stdout
    return tmp_path / "gen" / name


@pytest.mark.parametrize("style", STYLES)
def test_scaffold_writes_an_installable_plugin(cli: Invoke, tmp_path: Path, style: str) -> None:
    target = _generate(cli, tmp_path, "my_tools", style)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/pipeline_ex_my_tools/__init__.py",
        "src/pipeline_ex_my_tools/py.typed",
        "tests/test_my_tools.py",
    ]
    pyproject = (target / "pyproject.toml").read_text()
    entry = "pipeline_ex_my_tools:MyToolsPlugin" if style == "class" else "pipeline_ex_my_tools"
    assert '[project.entry-points."pipeline_ex.plugins"]' in pyproject
    assert f'my_tools = "{entry}"' in pyproject
    assert 'dependencies = ["pipeline-ex"]' in pyproject
    source = (target / "src" / "pipeline_ex_my_tools" / "__init__.py").read_text()
    assert "StepContext" in source and "MetadataDict" in source
    assert ("class MyToolsPlugin(Plugin)" in source) == (style == "class")
    assert "$" not in source + pyproject  # every placeholder was filled
    assert "module: my_tools" in (target / "README.md").read_text()


@pytest.mark.slow  # runs the generated plugin's pytest, ruff and mypy
@pytest.mark.parametrize("style", STYLES)
def test_scaffolded_plugin_passes_its_own_tests_and_lint(
    cli: Invoke, tmp_path: Path, style: str
) -> None:
    """Right after generation, as its author would run them (src on the path, no install);
    the longest allowed name too, so that no generated line outgrows the line length."""
    for name in ("my_tools", "a" * 30):
        target = _generate(cli, tmp_path, name, style)
        env = _env(tmp_path, str(target / "src"))
        out = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], target, env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "5 passed" in out.stdout
        for lint in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
            out = _run([sys.executable, "-m", "ruff", *lint], target, env)
            assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("My-Tools", "lowercase letters"),
        ("2fast", "start with a letter"),
        ("a" * 31, "at most 30"),
        ("x__y", "single underscores"),
        ("tools_", "not at the end"),
        ("class", "Python keyword"),
        ("core_steps", "built-in plugin"),
    ],
)
def test_scaffold_refuses_an_invalid_name(cli: Invoke, tmp_path: Path, name: str, why: str) -> None:
    result = cli("plugins", "new", name, "--dir", tmp_path / "gen")
    assert result.exit_code == 2
    assert "error [invalid_plugin_name]" in result.stderr and why in result.stderr
    assert not (tmp_path / "gen").exists()


def test_scaffold_suggests_a_usable_name(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError) as info:
        write_plugin("My-Tools", Style.CLASS, tmp_path)
    assert "for example 'my_tools'" in str(info.value)


def test_scaffold_refuses_an_existing_non_empty_target(cli: Invoke, tmp_path: Path) -> None:
    target = tmp_path / "gen" / "my_tools"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("mine")
    result = cli("plugins", "new", "my_tools", "--dir", tmp_path / "gen")
    assert result.exit_code == 2
    assert "error [target_not_empty]" in result.stderr and str(target) in result.stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    (tmp_path / "gen" / "file_plugin").write_text("a file")
    assert cli("plugins", "new", "file_plugin", "--dir", tmp_path / "gen").exit_code == 2


def test_scaffold_fills_an_existing_empty_folder(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "gen" / "my_tools").mkdir(parents=True)
    assert _generate(cli, tmp_path, "my_tools", "module").joinpath("pyproject.toml").is_file()


def test_scaffold_default_style_is_class_in_the_current_folder(cli: Invoke, tmp_path: Path) -> None:
    result = cli("plugins", "new", "here")  # the CLI tests run in tmp_path
    assert result.exit_code == 0, result.stderr
    source = (tmp_path / "here" / "src" / "pipeline_ex_here" / "__init__.py").read_text()
    assert "class HerePlugin(Plugin)" in source


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_scaffolded_plugins_are_mypy_strict_clean(tmp_path: Path) -> None:
    targets = [write_plugin(f"typed_{s}", Style(s), tmp_path) for s in STYLES]
    env = {**_env(tmp_path), "MYPYPATH": os.pathsep.join(str(t / "src") for t in targets)}
    checked = [str(t / "src" / f"pipeline_ex_{t.name}") for t in targets] + [
        str(t / "tests" / f"test_{t.name}.py") for t in targets
    ]
    mypy = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mc")]
    out = _run([*mypy, *checked], tmp_path, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found in 4 source files" in out.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("style", STYLES)
def test_scaffolded_plugin_installs_and_is_found_by_its_entry_point(
    tmp_path: Path, style: str
) -> None:
    """Build a wheel of the generated plugin (offline), install it into a fresh venv that sees
    this environment's pipeline-ex, then: its tests pass against the installed package, and
    a config naming the entry point loads it and runs its step."""
    target = write_plugin("installed", Style(style), tmp_path / "gen")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        tmp_path,
        dict(os.environ),
    ).stdout.strip()
    # (an editable install's own .pth is not read from there, so name src/ explicitly)
    Path(site, "host_env.pth").write_text(f"{ROOT / 'src'}\n{sysconfig.get_paths()['purelib']}\n")
    env = {**_env(tmp_path), "PYTHONPATH": ""}
    wheels = tmp_path / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    build = _run([*pip_wheel, "-w", str(wheels), str(target)], tmp_path, env)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("pipeline_ex_installed-*.whl")
    install = _run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], tmp_path, env
    )
    assert install.returncode == 0, install.stderr
    # its own tests, against the installed package (src/ is not on the path)
    tests = _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], target, env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
    config = tmp_path / "plugin_config.yaml"
    config.write_text("plugins:\n  installed:\n    module: installed\n")
    script = textwrap.dedent(
        f"""
        import json, pipeline_ex_installed
        from pipeline_ex import Runtime
        with Runtime(plugin_config={str(config)!r}) as rt:
            print(json.dumps({{
                "failed": {{n: e.code for n, e in rt.load_report.failed.items()}},
                "origin": rt.plugins.get_plugin("installed").origin,
                "from": pipeline_ex_installed.__file__,
                "text": rt.run({{"workflow": {{"name": "x", "installed": {{"greeting": "Hey"}},
                    "steps": [{{"name": "s", "type": "installed_greet", "who": "CI"}}]}}}})
                    ["s"]["text"],
            }}))
        """
    )
    out = _run([str(python), "-c", script], tmp_path, env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["origin"] == "entry_point:installed"
    assert report["from"].startswith(site)
    assert report["text"] == "Hey, CI!"


def test_plan_files_writes_nothing(tmp_path: Path) -> None:
    files = plan_files("planned", Style.MODULE)
    assert "tests/test_planned.py" in files and not any(tmp_path.iterdir())
