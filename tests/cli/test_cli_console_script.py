"""True end-to-end runs of the installed ``pipeline-ex`` console script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "pipeline-ex"

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")


def run_script(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_EX_")}
    env.pop("LITELLM_OFFLINE_MODE", None)  # the CLI must set the offline switches itself
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.slow  # starts the installed console script
def test_console_script_runs_an_example_as_json(tmp_path: Path) -> None:
    # The workflow's output_dir is relative to the workflow file's folder: run a copy.
    workflow = tmp_path / "claude_gemini_chain.yaml"
    workflow.write_bytes((ROOT / "examples" / "claude_gemini_chain.yaml").read_bytes())
    proc = run_script(
        "run",
        workflow,
        "--json",
        "--mock-responses",
        ROOT / "examples" / "fixtures" / "mock_responses.yaml",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert list(results) == ["review", "plan", "summary"]
    assert (tmp_path / "outputs" / "claude_gemini_chain" / "plan.json").is_file()


@pytest.mark.slow  # starts the installed console script
def test_console_script_failure_has_code_and_no_traceback(tmp_path: Path) -> None:
    workflow = tmp_path / "fail.yaml"
    workflow.write_text(
        "workflow:\n  name: f\n  steps:\n    - name: boom\n      type: test_echo\n"
        "      error_message: it broke\n"
    )
    proc = run_script("run", workflow, cwd=tmp_path)
    assert proc.returncode == 1
    assert "error [step_failed]: step 'boom' (type 'test_echo') failed: it broke" in proc.stderr
    assert "Traceback" not in proc.stderr
    invalid = run_script("validate", tmp_path / "missing.yaml", cwd=tmp_path)
    assert invalid.returncode == 2
    assert "error [usage]" in invalid.stderr


def test_cli_package_sets_litellm_offline_switches() -> None:
    code = (
        "import os; import pipeline_ex.cli; "
        "print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP'], os.environ['LITELLM_OFFLINE_MODE'])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "true"]


SLEEPY_PLUGIN = """
import pathlib
import time

from pipeline_ex.plugins import Plugin

MARKS = pathlib.Path(__file__).parent / "marks"


class Sleepy:
    def execute(self, step, context):
        (MARKS / "started").write_text("1")
        time.sleep(30)
        return "never"


class ThePlugin(Plugin):
    def terminate(self, state):
        (MARKS / "terminated").write_text("1")

    def get_metadata(self, state):
        return {"name": "sleepy", "version": "1.0"}

    def get_step_types(self, state):
        return [("sleepy", Sleepy)]
"""


@pytest.mark.slow  # starts the installed console script
def test_a_real_ctrl_c_stops_the_host_with_interrupted_and_130(tmp_path: Path) -> None:
    """Issue 7, item 4: the user's Ctrl-C is not a plugin failure: the run stops, the
    plugins are shut down, ``error [interrupted]`` is said and the exit status is 130."""
    import signal
    import time

    plugin_dir = tmp_path / "sleepy"
    (plugin_dir / "marks").mkdir(parents=True)
    (plugin_dir / "plugin.yaml").write_text(
        "name: sleepy\nversion: '1.0'\nmodule: plugin:ThePlugin\n"
    )
    (plugin_dir / "plugin.py").write_text(SLEEPY_PLUGIN)
    (tmp_path / "plugins.yaml").write_text("plugins:\n  sleepy:\n    path: sleepy\n")
    workflow = tmp_path / "wf.yaml"
    workflow.write_text("workflow:\n  name: w\n  steps:\n    - name: s\n      type: sleepy\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_EX_")}
    proc = subprocess.Popen(
        [str(SCRIPT), "run", str(workflow), "--plugins", str(tmp_path / "plugins.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        started = plugin_dir / "marks" / "started"
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert started.exists(), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "error [interrupted]" in stderr and "Traceback" not in stderr
    assert (plugin_dir / "marks" / "terminated").exists()
