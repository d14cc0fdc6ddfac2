"""Compatibility with the 46 real pipeline_ex workflows in ../shared/pipeline_ex_corpus.

Each file is either valid or refused with a typed ``InvalidInputError`` that names what is
unsupported and where; the ones that use only supported step types and no ``file`` prompt
parts run to completion in mock mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_ex import Runtime
from pipeline_ex.errors import DocumentError, InvalidInputError

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "pipeline_ex_corpus"
FILES = sorted(p.name for p in CORPUS.glob("*.yaml")) if CORPUS.is_dir() else []
SUPPORTED = {
    "claude",
    "gemini",
    "parallel_claude",
    "set_variable",
    "for_loop",
    "while_loop",
    "test_echo",
}

pytestmark = pytest.mark.skipif(not FILES, reason=f"corpus not found at {CORPUS}")


def _steps(steps: Any) -> Iterator[dict[str, Any]]:
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict):
            yield step
            yield from _steps(step.get("steps"))


def _prompt_parts(step: dict[str, Any]) -> Iterator[Any]:
    prompts = [step.get("prompt")]
    prompts += [t.get("prompt") for t in step.get("parallel_tasks") or [] if isinstance(t, dict)]
    for prompt in prompts:
        if isinstance(prompt, list):
            yield from prompt


def describe(path: Path) -> dict[str, Any]:
    """What a file uses, read independently of the engine (plain yaml.safe_load)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    workflow = data.get("workflow") if isinstance(data, dict) else None
    steps = list(_steps(workflow.get("steps"))) if isinstance(workflow, dict) else []
    types = {str(s.get("type")) for s in steps}
    uses_files = any(
        isinstance(part, dict) and part.get("type") == "file"
        for step in steps
        for part in _prompt_parts(step)
    )
    return {
        "is_workflow": isinstance(workflow, dict),
        "types": types,
        "top_level": [s.get("name") for s in workflow.get("steps", [])]
        if isinstance(workflow, dict)
        else [],
        "runnable": isinstance(workflow, dict) and types <= SUPPORTED and not uses_files,
    }


@pytest.fixture(scope="module")
def corpus_runtime() -> Iterator[Runtime]:
    rt = Runtime()
    try:
        yield rt
    finally:
        rt.close()


def test_the_corpus_is_complete() -> None:
    assert len(FILES) == 46


@pytest.mark.parametrize("name", FILES)
def test_valid_or_refused_with_a_typed_located_error(corpus_runtime: Runtime, name: str) -> None:
    path = CORPUS / name
    facts = describe(path)
    try:
        corpus_runtime.validate(path)
    except InvalidInputError as exc:
        assert not facts["runnable"], f"{name} should be accepted: {exc}"
        assert isinstance(exc, DocumentError)
        assert exc.problems
        for problem in exc.problems:
            assert problem.location.file == str(path)
            assert problem.location.line is not None
            assert problem.message
        text = str(exc)
        assert re.search(rf"{re.escape(str(path))}:\d+", text)
        for kind in facts["types"] - set(corpus_runtime.steps):
            assert f"unknown step type {kind!r}" in text, f"{kind} not named in: {text}"
        if not facts["is_workflow"]:
            assert "top-level 'workflow'" in text
        return
    # accepted: then nothing it uses is unknown
    assert facts["is_workflow"]
    assert facts["types"] <= set(corpus_runtime.steps)


RUNNABLE = [n for n in FILES if describe(CORPUS / n)["runnable"]]


def test_enough_files_are_runnable() -> None:
    if FILES:
        assert len(RUNNABLE) >= 10


@pytest.mark.parametrize("name", RUNNABLE)
def test_runs_to_completion_in_mock_mode(
    corpus_runtime: Runtime, name: str, tmp_path: Path
) -> None:
    path = CORPUS / name
    results = corpus_runtime.run(path, output_dir=tmp_path / "out", mode="mock")
    expected = describe(path)["top_level"]
    assert list(results) == expected
    for step_name, result in results.items():
        if isinstance(result, dict):
            assert result.get("success") is not False, (step_name, result)
