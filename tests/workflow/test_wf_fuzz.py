"""Hypothesis: any YAML document given to ``Runtime.run`` gives results or a typed error.

"Typed" means a ``PipelineExError`` subclass; anything else (a ``KeyError``, a
``RecursionError``, a ``TypeError`` from deep inside) is a bug.  Three sources of documents:
arbitrary text, generated structures dumped with ``yaml.safe_dump`` (workflow-shaped and
free-form), and random mutations of the real pipeline_ex corpus files.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_ex import Runtime
from pipeline_ex.errors import PipelineExError

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "pipeline_ex_corpus"
CORPUS_TEXTS = (
    [p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.yaml"))]
    if CORPUS.is_dir()
    else []
)

#: Examples per test; raise it for a longer hunt (with --timeout=0: pytest-timeout is 120 s).
FUZZ = settings(
    max_examples=int(os.environ.get("PIPELINE_EX_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

STEP_TYPES = [
    "claude",
    "gemini",
    "test_echo",
    "for_loop",
    "while_loop",
    "set_variable",
    "parallel_claude",
    "claude_smart",
]
WORDS = [
    "claude",
    "gemini",
    "test_echo",
    "static",
    "file",
    "previous_response",
    "a",
    "b",
    "x",
    "{{steps.a.text}}",
    "{{state.x}}",
    "{{inputs.v}}",
    "{{loop.item}}",
    "{{ a }}-{{ b }}",
    "a.score >= 8",
    "state.x < 3",
    "previous_response:text",
    "a:text",
    "a:items.0",
    "x",
    "not a",
    "-a",
    "{{",
    "}}",
    "..",
    "../../etc/passwd",
    "/etc/hostname",
    "*",
    "re:.*",
    "{{ 'x' * 99999999999 }}",
    "{{state.x + state.x}}",
    "global",
    "loop",
    "session",
]
KEYS = [
    "workflow",
    "name",
    "steps",
    "type",
    "prompt",
    "content",
    "step",
    "extract",
    "strict",
    "path",
    "condition",
    "value",
    "error_message",
    "variables",
    "scope",
    "iterator",
    "data_source",
    "parallel",
    "max_parallel",
    "max_iterations",
    "parallel_tasks",
    "id",
    "output_to_file",
    "claude_options",
    "global_vars",
    "and",
    "or",
    "not",
    "x",
    "a",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.integers(0, 3)), children, max_size=5),
    ),
    max_leaves=25,
)
prompt_parts = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["static", "file", "previous_response", "other"])},
        optional={
            "content": scalars,
            "step": st.sampled_from(["a", "b", "x", "z"]),
            "extract": st.sampled_from(["text", "items", "a.b", ""]),
            "strict": st.booleans(),
            "path": st.sampled_from(["x.md", "../x", ""]),
        },
    ),
    max_size=3,
)


def step_strategy(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "prompt": st.one_of(prompt_parts, trees),
        "condition": st.one_of(st.sampled_from(WORDS), trees),
        "value": trees,
        "variables": st.one_of(
            st.dictionaries(st.sampled_from(["x", "items", "a"]), trees, max_size=3), trees
        ),
        "iterator": st.sampled_from(["item", "x", ""]),
        "data_source": st.one_of(st.sampled_from(WORDS), st.lists(scalars, max_size=3), trees),
        "parallel": st.booleans(),
        "max_parallel": st.integers(-1, 4),
        "max_iterations": st.integers(-1, 5),
        "parallel_tasks": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"id": st.sampled_from(["t1", "t2", 3])}, optional={"prompt": prompt_parts}
                ),
                max_size=3,
            ),
            trees,
        ),
        "output_to_file": st.sampled_from(
            ["out.txt", "../escape.txt", "d/{{inputs.v}}.json", "/tmp/x", ""]
        ),
        "error_message": scalars,
        "scope": st.sampled_from(["global", "loop", "session", "bogus"]),
        "claude_options": st.one_of(
            st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3), trees
        ),
    }
    if depth > 0:
        optional["steps"] = st.lists(step_strategy(depth - 1), max_size=3)
    return st.fixed_dictionaries(
        {"name": st.sampled_from(["a", "b", "x", "z"]), "type": st.sampled_from(STEP_TYPES)},
        optional=optional,
    )


workflows = st.fixed_dictionaries(
    {
        "workflow": st.fixed_dictionaries(
            {"name": st.sampled_from(["w", ""]), "steps": st.lists(step_strategy(2), max_size=4)},
            optional={"global_vars": trees, "variables": trees},
        )
    }
)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Runtime, Path]]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pipeline-ex-fuzz-") as folder, Runtime() as rt:
        yield rt, Path(folder)


_counter = itertools.count()


def run_document(shared: tuple[Runtime, Path], text: str | bytes, inputs: Any = None) -> None:
    runtime, folder = shared
    index = next(_counter)
    path = folder / f"w{index}.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        results = runtime.run(
            path, inputs=inputs or {"v": "value"}, output_dir=folder / f"out{index}"
        )
    except PipelineExError:
        return
    assert isinstance(results, dict)


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text(shared: tuple[Runtime, Path], text: str) -> None:
    run_document(shared, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes(shared: tuple[Runtime, Path], data: bytes) -> None:
    run_document(shared, data)


@FUZZ
@given(document=workflows, inputs=st.dictionaries(st.sampled_from(["v", "x"]), trees, max_size=2))
def test_generated_workflows(
    shared: tuple[Runtime, Path], document: dict[str, Any], inputs: dict[str, Any]
) -> None:
    run_document(shared, yaml.safe_dump(document, allow_unicode=True), inputs)


@FUZZ
@given(document=trees)
def test_generated_free_form_documents(shared: tuple[Runtime, Path], document: Any) -> None:
    run_document(shared, yaml.safe_dump(document, allow_unicode=True))
    run_document(shared, yaml.safe_dump({"workflow": document}, allow_unicode=True))


TEXT_MUTATIONS = ["delete", "duplicate", "swap", "insert", "indent", "dedent", "truncate", "token"]
TOKENS = [
    "&a",
    "*a",
    "!!python/name:os.system",
    "{{",
    "}}",
    "- ",
    ": ",
    "[",
    "{",
    "'",
    '"',
    "|",
    ">",
    "? ",
    "---",
    "\t",
    "~",
    "!!binary",
    "<<: *a",
    "%",
    "@",
    "`",
]


@pytest.mark.skipif(not CORPUS_TEXTS, reason="corpus not available")
@FUZZ
@given(data=st.data())
def test_mutated_corpus_text(shared: tuple[Runtime, Path], data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(CORPUS_TEXTS), label="file")
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        if not lines:
            break
        kind = data.draw(st.sampled_from(TEXT_MUTATIONS))
        i = data.draw(st.integers(0, len(lines) - 1))
        j = data.draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "insert":
            lines.insert(i, data.draw(st.text(max_size=20)))
        elif kind == "indent":
            lines[i] = "  " + lines[i]
        elif kind == "dedent":
            lines[i] = lines[i][2:]
        elif kind == "truncate":
            lines = lines[:i]
        else:
            position = data.draw(st.integers(0, len(lines[i])))
            token = data.draw(st.sampled_from(TOKENS))
            lines[i] = lines[i][:position] + token + lines[i][position:]
    run_document(shared, "\n".join(lines) + "\n")


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nodes(item, (*path, index))


@pytest.mark.skipif(not CORPUS_TEXTS, reason="corpus not available")
@FUZZ
@given(data=st.data())
def test_mutated_corpus_structure(shared: tuple[Runtime, Path], data: st.DataObject) -> None:
    document = yaml.safe_load(data.draw(st.sampled_from(CORPUS_TEXTS), label="file"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _nodes(document) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        replacement = data.draw(trees, label="replacement")
        if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
    run_document(shared, yaml.safe_dump(document, allow_unicode=True))
