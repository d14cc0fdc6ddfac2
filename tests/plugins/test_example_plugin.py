"""The plugin author's example (examples/plugins/) works the way the README says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError
from pipeline_ex.plugins import PluginStatus

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TEXT_TOOLS = EXAMPLES / "plugins" / "text_tools"


@pytest.fixture
def example_runtime(monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The example config, with the example package importable even when not pip-installed."""
    monkeypatch.syspath_prepend(str(TEXT_TOOLS / "src"))
    config = {
        "plugins": {
            "text_tools": {"module": "pipeline_ex_text_tools:TextToolsPlugin"},
            "shouting": {"module": "pipeline_ex_text_tools.shouting", "config": {"volume": 3}},
            "greeter": {
                "path": str(EXAMPLES / "plugins" / "greeter"),
                "config": {"greeting": "Hi"},
            },
        }
    }
    rt = Runtime(plugin_config=config)
    yield rt  # type: ignore[misc]
    rt.close()
    for name in [m for m in sys.modules if m.startswith("pipeline_ex_text_tools")]:
        sys.modules.pop(name)


def test_example_plugins_load_and_run(example_runtime: Runtime) -> None:
    assert example_runtime.load_report.ok, example_runtime.load_report.failed
    results = example_runtime.run(EXAMPLES / "text_tools_pipeline.yaml")
    assert results["hello"]["text"] == "Hi, pipeline-ex!"
    assert results["count"]["words"] == len(results["draft"]["text"].split())
    assert results["loud"]["text"] == "HI, PIPELINE-EX!!!!"
    record = example_runtime.plugins.get_plugin("shouting")
    assert record.adapter is not None and record.adapter.kind == "module"
    assert record.dependencies == ("text_tools",)
    assert example_runtime.providers.capabilities("echo") == {"text_generation", "echo"}


def test_example_schema_extension_is_enforced(example_runtime: Runtime) -> None:
    workflow = {
        "workflow": {
            "name": "limits",
            "text_tools": {"max_words": 2},
            "steps": [{"name": "c", "type": "word_count", "text": "one two three"}],
        }
    }
    with pytest.raises(StepFailedError) as info:
        example_runtime.run(workflow)
    assert "max_words=2" in str(info.value) and "'word_count'" in str(info.value)
    workflow["workflow"]["text_tools"] = {"max_words": "many"}
    from pipeline_ex.errors import SchemaValidationError

    with pytest.raises(SchemaValidationError) as schema_info:
        example_runtime.validate(workflow)
    assert "workflow.text_tools.max_words" in str(schema_info.value)


def test_example_dependency_blocks_unload(example_runtime: Runtime) -> None:
    from pipeline_ex.errors import PluginError

    with pytest.raises(PluginError) as info:
        example_runtime.plugins.unload_plugin("text_tools")
    assert info.value.code == "in_use"
    example_runtime.plugins.unload_plugin("text_tools", cascade=True)
    assert "shout" not in example_runtime.steps and "word_count" not in example_runtime.steps
    assert example_runtime.plugins.get_plugin("greeter").status == PluginStatus.ACTIVE


@pytest.mark.slow  # pip-installs into a fresh venv
@pytest.mark.timeout(300)
def test_pip_installed_example_is_discovered_by_entry_point(tmp_path: Path) -> None:
    """Install the example distribution into a fresh venv and load it by entry-point name."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # the fresh venv sees this environment's packages (pipeline-ex and its dependencies)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # (an editable install's own .pth is not read from there, so name src/ explicitly)
    Path(site, "host_env.pth").write_text(f"{ROOT / 'src'}\n{sysconfig.get_paths()['purelib']}\n")
    env = {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIPELINE_EX_CACHE_DIR": str(tmp_path / "cache"),
    }
    # build the wheel with this environment's setuptools (offline), install it like a user
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(TEXT_TOOLS),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    (wheel,) = wheels.glob("pipeline_ex_text_tools-*.whl")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        env=env,
        capture_output=True,
    )
    config = tmp_path / "plugin_config.yaml"
    config.write_text(
        "plugins:\n  text_tools:\n    module: text_tools\n  shouting:\n    module: shouting\n"
    )
    script = textwrap.dedent(
        f"""
        import json
        from pipeline_ex import Runtime
        from pipeline_ex.plugins.discovery import EntryPointIndex
        rt = Runtime(plugin_config={str(config)!r})
        print(json.dumps({{
            "names": EntryPointIndex().names(),
            "failed": {{n: e.code for n, e in rt.load_report.failed.items()}},
            "origins": {{r.name: r.origin for r in rt.plugins.list_plugins()}},
            "loud": rt.run({{"workflow": {{"name": "x", "steps": [
                {{"name": "s", "type": "shout", "text": "ok"}}]}}}})["s"]["text"],
        }}))
        """
    )
    out = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"text_tools", "shouting"} <= set(report["names"])
    assert report["failed"] == {}
    assert report["origins"]["text_tools"] == "entry_point:text_tools"
    assert report["origins"]["shouting"] == "entry_point:shouting"
    assert report["loud"] == "OK!"
