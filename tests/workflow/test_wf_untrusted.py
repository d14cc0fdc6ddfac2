"""Issue 7: workflow files are untrusted input.  One regression test (at least) per finding,
named after it; the fuzz suite (test_wf_fuzz.py) generates the siblings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import WorkflowSemanticError


def _wf(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"workflow": {"name": "w", "steps": list(steps), **extra}}


def _yaml_workflow(folder: Path, output_dir: str, target: str = "authorized_keys") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wf.yaml"
    path.write_text(
        "workflow:\n  name: od\n"
        f"  output_dir: {output_dir!r}\n"
        "  steps:\n    - name: a\n      type: test_echo\n"
        f"      value: 'ssh-ed25519 AAAA x'\n      output_to_file: {target}\n",
        encoding="utf-8",
    )
    return path


# -- 1. output_dir may point anywhere ------------------------------------------------------


@pytest.mark.parametrize("escape", ["absolute", "../../../../tmp/x", "../sibling", "a/../.."])
def test_output_dir_outside_workflow_folder_is_refused(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, escape: str
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    folder = tmp_path / "downloads" / "shared"
    value = str(victim) if escape == "absolute" else escape
    workflow = _yaml_workflow(folder, value)
    monkeypatch.chdir(folder)  # the relative forms used to resolve from here
    for call in (runtime.validate, runtime.run):
        with pytest.raises(WorkflowSemanticError) as info:
            call(workflow)
        (problem,) = info.value.problems
        assert problem.location.file == str(workflow)
        assert problem.location.path == "workflow.output_dir"
        assert problem.location.line == 3
        assert info.value.code == "workflow_invalid"
    written = [p for p in tmp_path.rglob("authorized_keys")]
    assert written == []


def test_output_dir_through_a_symlink_out_of_the_folder_is_refused(
    runtime: Runtime, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "link").symlink_to(outside, target_is_directory=True)
    workflow = _yaml_workflow(folder, "link/keys")
    with pytest.raises(WorkflowSemanticError, match="outside the workflow's folder"):
        runtime.run(workflow)
    assert not (outside / "keys").exists()


def test_relative_output_dir_resolves_against_the_workflow_folder(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "wf"
    workflow = _yaml_workflow(folder, "results/run1", target="out.txt")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    runtime.run(workflow)
    assert (folder / "results" / "run1" / "out.txt").read_text() == "ssh-ed25519 AAAA x"
    assert list(elsewhere.iterdir()) == []


def test_mapping_workflow_output_dir_is_confined_to_the_current_directory(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    step = {"name": "a", "type": "test_echo", "value": "x", "output_to_file": "a.txt"}
    runtime.run(_wf(step, output_dir="inside"))
    assert (tmp_path / "inside" / "a.txt").read_text() == "x"
    for value in ("../up", "/tmp/pipeline-ex-od"):
        with pytest.raises(WorkflowSemanticError) as info:
            runtime.run(_wf(step, output_dir=value))
        assert info.value.problems[0].location.path == "workflow.output_dir"
    assert not Path("/tmp/pipeline-ex-od").exists()


def test_output_dir_given_by_the_caller_is_trusted_anywhere(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = tmp_path / "wf"
    workflow = _yaml_workflow(folder, "../escape", target="a.txt")  # overridden, still invalid
    with pytest.raises(WorkflowSemanticError):
        runtime.run(workflow, output_dir=tmp_path / "mine")
    workflow = _yaml_workflow(folder, "fine", target="a.txt")
    runtime.run(workflow, output_dir=tmp_path / "mine")
    assert (tmp_path / "mine" / "a.txt").is_file()
    assert not (folder / "fine").exists()
    assert os.path.isdir(tmp_path / "mine")
