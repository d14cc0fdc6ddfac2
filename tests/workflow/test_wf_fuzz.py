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

#: Hundreds of examples per test, ~20 s in all: out of the quick loop (``-m "not slow"``).
pytestmark = pytest.mark.slow

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


# -- hostile workflow files (issue 7): paths, refs, braces, sizes --------------------------
#
# Each class of attack found by hand gets a generator here, so that a sibling of each
# finding is caught too.  Every outcome must be results or a typed error, as above, plus the
# class's own invariant: nothing written outside the workflow's folder, no request made,
# results that are strict JSON, budgets that hold.  Each example costs more than one above,
# so these run a fifth as many (PIPELINE_EX_FUZZ_EXAMPLES scales them too).

HOSTILE = settings(FUZZ, max_examples=max(10, FUZZ.max_examples // 5))


def _refuse_constant(constant: str) -> Any:
    raise AssertionError(f"--json output is not strict JSON: {constant}")


class Hostile:
    """A runtime with small budgets, a scratch tree and a counting HTTP server."""

    def __init__(self, base: Path, runtime: Runtime) -> None:
        import http.server
        import threading

        self.base = base
        self.runtime = runtime
        self.outside = base / "outside"  # must stay empty whatever a workflow says
        self.outside.mkdir()
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.count = itertools.count()

    def run(self, document: Any, inputs: Any = None, *, text: str | None = None) -> None:
        """Run ``document`` from its own folder (``link`` in it points at ``outside``), with
        no caller output_dir: the workflow's own output_dir decides where files go."""
        import json

        from pipeline_ex import results_json

        folder = self.base / f"wf{next(self.count)}"
        (folder / "sub").mkdir(parents=True)
        (folder / "link").symlink_to(self.outside, target_is_directory=True)
        path = folder / "wf.yaml"
        path.write_text(
            text if text is not None else yaml.safe_dump(document, allow_unicode=True),
            encoding="utf-8",
            errors="surrogatepass",
        )
        try:
            results = self.runtime.run(path, inputs=inputs or {"v": "value", "p": "../outside"})
        except PipelineExError:
            results = None
        if results is not None:
            json.loads(results_json.dumps(results), parse_constant=_refuse_constant)
        assert list(self.outside.iterdir()) == []
        strays = {p.name for p in self.base.iterdir()} - {"outside", "outputs"}
        assert all(name.startswith("wf") for name in strays), strays
        assert self.requests == []


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    import tempfile

    from pipeline_ex import documents
    from pipeline_ex.workflow.budgets import RunLimits

    with (
        tempfile.TemporaryDirectory(prefix="pipeline-ex-hostile-") as folder,
        Runtime() as rt,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.chdir(folder)  # the default ./outputs lands in the scratch tree
        patch.setattr(documents, "MAX_NODES", 5_000)  # budgets small enough to reach
        rt.executor.limits = RunLimits(
            max_steps=2_000, max_result_bytes=2_000_000, max_extra_threads=4
        )
        runner = Hostile(Path(folder), rt)
        try:
            yield runner
        finally:
            runner.server.shutdown()
            runner.server.server_close()


PATH_PARTS = ["..", ".", "a", "outside", "link", "sub", "", "~", "{{inputs.p}}", "\\.."]


def hostile_paths(outside: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            [outside, outside + "/x", "/tmp", "/", "../outside", "link", "link/x", "..", "."]
        ),
        st.lists(st.sampled_from(PATH_PARTS), min_size=1, max_size=6).map("/".join),
    )


@HOSTILE
@given(data=st.data())
def test_hostile_paths(hostile: Hostile, data: st.DataObject) -> None:
    paths = hostile_paths(str(hostile.outside))
    steps = [
        {
            "name": f"s{i}",
            "type": "test_echo",
            "value": data.draw(trees, label="value"),
            "output_to_file": data.draw(paths, label="output_to_file"),
        }
        for i in range(data.draw(st.integers(1, 3), label="steps"))
    ]
    if data.draw(st.booleans(), label="file part"):
        part = {"type": "file", "path": data.draw(paths, label="file path")}
        steps.append({"name": "ask", "type": "claude", "prompt": [part]})
    workflow: dict[str, Any] = {"name": "paths", "steps": steps}
    if data.draw(st.booleans(), label="has output_dir"):
        workflow["output_dir"] = data.draw(paths, label="output_dir")
    inputs = {"v": "value", "p": data.draw(paths, label="input path")}
    hostile.run({"workflow": workflow}, inputs)


def hostile_schemas(url: str) -> st.SearchStrategy[Any]:
    refs = st.sampled_from(
        [
            url + "/a.json",
            url + "/b?k={{inputs.v}}",
            url.replace("http:", "") + "/c",
            "other.json",
            "#/$defs/x",
            "#/$defs/missing",
            "#",
            "urn:x",
            "file:///etc/passwd",
            "https://json-schema.org/draft/2020-12/schema",
            "#/properties/a",
            "{{inputs.v}}",
        ]
    )
    leaf = st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["string", "object", "integer"])}),
        st.fixed_dictionaries({"$ref": refs}),
        st.fixed_dictionaries({"$dynamicRef": refs}),
        st.fixed_dictionaries({"const": st.fixed_dictionaries({"$ref": refs})}),  # data
    )
    keyed = st.sampled_from(["properties", "$defs", "patternProperties"])
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda k, v: {k: {"a": v, "x": v}}, keyed, inner),
            st.builds(lambda v: {"items": v}, inner),
            st.builds(lambda vs: {"allOf": vs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda v: {"not": v}, inner),
            st.builds(
                lambda v, i: {**v, "$id": i},
                inner,
                st.sampled_from([url + "/root.json", "urn:root", "sub/", "#frag"]),
            ),
        ),
        max_leaves=6,
    )


@HOSTILE
@given(data=st.data())
def test_hostile_schema_refs(hostile: Hostile, data: st.DataObject) -> None:
    schema = data.draw(hostile_schemas(hostile.url), label="output_schema")
    value = data.draw(st.one_of(trees, st.just({"a": "x"})), label="value")
    step: dict[str, Any] = {"name": "s", "type": "test_echo", "value": value}
    step["output_schema"] = schema
    loop = {
        "name": "loop",
        "type": "for_loop",
        "iterator": "i",
        "data_source": [1, 2],
        "steps": [{**step, "name": "inner"}],
    }
    hostile.run({"workflow": {"name": "refs", "steps": [step, loop]}}, {"v": "SECRET-KEY"})


FRAGMENTS = ["{{", "}}", "{", "}", " ", "a", ".", "steps", "state.x", "inputs.v", "'x'*9"]
FRAGMENTS += ["loop.i", "[0]*3", "1e308*10", "-", "==", "'", '"', "\\", "{{{", "}}}"]

braces = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join),
    st.builds(
        lambda fragment, times, tail: fragment * times + tail,
        st.sampled_from(["{{", "{{ ", "{{{", "}}{{", "{{a", "{{ state.x }}"]),
        st.integers(1, 30_000),
        st.sampled_from(["", "}}", "x}}", "}}}"]),
    ),
)


@HOSTILE
@given(data=st.data())
def test_hostile_braces(hostile: Hostile, data: st.DataObject) -> None:
    def text() -> str:
        return data.draw(braces, label="braces")

    steps = [
        {"name": "v", "type": "set_variable", "variables": {"x": text(), "y": [text()]}},
        {"name": "e", "type": "test_echo", "value": {"k": text(), "l": [text(), text()]}},
        {"name": "c", "type": "claude", "prompt": [{"type": "static", "content": text()}]},
        {"name": "w", "type": "test_echo", "value": 1, "condition": text()},
    ]
    if data.draw(st.booleans(), label="loop"):
        steps.append(
            {
                "name": "l",
                "type": "for_loop",
                "iterator": "i",
                "data_source": text(),
                "steps": [{"name": "b", "type": "test_echo", "value": text()}],
            }
        )
    hostile.run({"workflow": {"name": "braces", "steps": steps}})


def _size_document(kind: str, n: int) -> str:
    header = "workflow:\n  name: sizes\n  steps:\n    - name: s\n      type: test_echo\n"
    if kind == "flat":
        return header + "      value:\n" + "        - 1\n" * n
    if kind == "deep":
        return header + "      value: " + "[" * n + "]" * n + "\n"
    if kind == "aliases":
        width = max(2, n % 12)
        text = "x: &a0 [" + ", ".join(["1"] * width) + "]\n"
        for level in range(1, 1 + n % 9):
            text += f"x{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]\n"
        return text + header + f"      value: *a{n % 9}\n"
    if kind == "long_string":
        return header + "      value: '" + "x" * (n * 50) + "'\n"
    return header + f"      value: 1\n    - {{name: t, type: test_echo, value: {n}}}\n"


@HOSTILE
@given(
    kind=st.sampled_from(["flat", "deep", "aliases", "long_string", "plain"]),
    n=st.integers(0, 12_000),
)
def test_hostile_document_sizes(hostile: Hostile, kind: str, n: int) -> None:
    hostile.run(None, text=_size_document(kind, n))


@HOSTILE
@given(
    items=st.integers(0, 3_000),
    text_size=st.integers(0, 300_000),
    list_size=st.integers(0, 30_000),
    parallel=st.booleans(),
    nested=st.booleans(),
)
def test_hostile_result_sizes(
    hostile: Hostile, items: int, text_size: int, list_size: int, parallel: bool, nested: bool
) -> None:
    body: dict[str, Any] = {
        "name": "body",
        "type": "test_echo",
        "value": {"t": f"{{{{'x'*{text_size}}}}}", "l": f"{{{{[0]*{list_size}}}}}"},
    }
    if nested:
        body = {
            "name": "inner",
            "type": "for_loop",
            "iterator": "j",
            "data_source": "{{[0]*4}}",
            "parallel": parallel,
            "max_parallel": 32,
            "steps": [body],
        }
    loop = {
        "name": "loop",
        "type": "for_loop",
        "iterator": "i",
        "data_source": f"{{{{[0]*{items}}}}}",
        "parallel": parallel,
        "max_parallel": 32,
        "steps": [body],
    }
    hostile.run({"workflow": {"name": "sizes", "steps": [loop]}})
    assert hostile.runtime.executor.limits.max_extra_threads == 4
