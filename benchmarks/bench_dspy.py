"""Issue 10: the DSPy plugin -- start-up, a cache-hit step, a compile, the fallback path.

- **Start-up**: a fresh interpreter from before ``import pipeline_ex`` until a Runtime with
  the example's plugin config is up (DSPy's import included), against the same without the
  DSPy plugin.  Design target: < 10 s.
- **Cache-hit step**: one ``dspy_claude`` step of the example, mock mode, its compiled program
  loaded from the disk cache and run (one provider call), against a plain ``claude`` step.
- **Compile**: the example's ``answer`` step compiled with BootstrapFewShot from an empty
  cache (mock provider: the figure is DSPy's and pipeline-ex's own work, not a model's).
- **Fallback**: a step whose DSPy answer cannot be parsed (ChatAdapter, then DSPy's JSON
  retry), falling back to the plain ``claude`` step.  Design target: < 100 ms.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import ROOT, add_ratios, each_call_ns, emit, goal, median, parse_args, result, row

HERE = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "dspy"
SIZES = {
    "full": {"cold": 5, "hit": 50, "compile": 7, "fallback": 30},
    "tiny": {"cold": 1, "hit": 3, "compile": 1, "fallback": 3},
}
QUESTION = "What is the capital of France?"


def cold(config: str) -> float:
    out = subprocess.run(
        [sys.executable, str(HERE / "_dspy_child.py"), config],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    if data["failed"]:
        raise SystemExit(f"plugins failed to load in the start-up child: {data['failed']}")
    return float(data["ns"])


def qa_step(**changes: Any) -> dict[str, Any]:
    step = {
        "name": "answer",
        "type": "dspy_claude",
        "dspy_signature": {
            "instructions": "Answer the geography question with the name of a city only.",
            "input_fields": [{"name": "question", "type": "str"}],
            "output_fields": [{"name": "answer", "type": "str"}],
        },
        "dspy_config": {"few_shot_examples": 3},
        "inputs": {"question": QUESTION},
    }
    return {"workflow": {"name": "bench", "steps": [{**step, **changes}]}}


PLAIN = {
    "workflow": {
        "name": "plain",
        "steps": [
            {
                "name": "answer",
                "type": "claude",
                "prompt": [{"type": "static", "content": QUESTION}],
            }
        ],
    }
}
FALLBACK = qa_step(
    dspy_signature={
        "input_fields": [{"name": "question"}],
        "output_fields": [{"name": "count", "type": "int"}],
    },
    inputs={"question": "How many gods live in Atlantis?"},
)


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    work = Path(tempfile.mkdtemp(prefix="pipeline-ex-bench-dspy-"))
    os.environ.setdefault("PIPELINE_EX_CACHE_DIR", str(work / "pipeline-ex-cache"))
    os.environ.setdefault("DSPY_CACHEDIR", str(work / "dspy-cache"))
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    example = work / "example"
    shutil.copytree(EXAMPLE, example)
    config = example / "plugin_config.yaml"
    fixtures = work / "mock.yaml"
    fixtures.write_text("claude:\n  Atlantis: {count: many}\n", encoding="utf-8")
    os.chdir(work)  # the compile cache lives under the working directory

    with_dspy = [cold(str(config)) for _ in range(cfg["cold"])]
    without = [cold("-") for _ in range(cfg["cold"])]

    from pipeline_ex import Runtime

    with Runtime(plugin_config=config, mock_responses=fixtures) as runtime:
        state = runtime.plugins.registry.get("dspy_plugin").state
        first = runtime.run(qa_step())["answer"]["dspy"]
        assert first["optimized"] and not first["cache_hit"], first
        mock = runtime.providers.get("mock_claude")

        def hit() -> None:
            before = mock.calls
            report = runtime.run(qa_step())["answer"]["dspy"]
            assert report["cache_hit"] and mock.calls - before == 1, report

        def plain() -> None:
            assert runtime.run(PLAIN)["answer"]["success"]

        def compile_once() -> None:
            state.store.clear()
            report = runtime.run(qa_step())["answer"]["dspy"]
            assert report["optimized"] and not report["cache_hit"], report

        def fallback() -> None:
            report = runtime.run(FALLBACK)["answer"]["dspy"]
            assert report["fallback"], report

        hit_ns = each_call_ns(hit, repeat=cfg["hit"], warmup=2)
        plain_ns = each_call_ns(plain, repeat=cfg["hit"], warmup=2)
        compile_ns = each_call_ns(compile_once, repeat=cfg["compile"], warmup=1)
        calls_before = mock.calls
        compile_once()
        compile_calls = mock.calls - calls_before
        fallback_ns = each_call_ns(fallback, repeat=cfg["fallback"], warmup=2)
    shutil.rmtree(work, ignore_errors=True)

    rows = {
        "startup": row(
            "start-up with dspy_plugin (fresh interpreter, DSPy import included)",
            with_dspy,
            "ms",
        ),
        "startup_base": row(
            "start-up without it (built-in plugins only)", without, "ms", baseline=True
        ),
        "hit": row(
            "dspy_claude step, cached program (load + 1 provider call)", hit_ns, "ms", p99=True
        ),
        "plain": row("plain claude step, same run", plain_ns, "ms", baseline=True),
        "compile": row(
            f"compile of the example step (BootstrapFewShot, {compile_calls} provider calls)",
            compile_ns,
            "ms",
        ),
        "fallback": row(
            "fallback path: unparsable DSPy answer -> plain claude step",
            fallback_ns,
            "ms",
            p99=True,
        ),
    }
    add_ratios(rows["startup"], {"without": rows["startup_base"]})
    add_ratios(rows["hit"], {"plain step": rows["plain"]})
    goals = [
        goal("plugin start-up < 10 s (design target)", median(with_dspy) / 1e9, 10.0, "s"),
        goal("fallback path < 100 ms (design target)", rows["fallback"]["median"], 100.0, "ms"),
    ]
    notes = [
        "Mock mode: the provider answers in microseconds, so the step and compile figures are "
        "DSPy's and pipeline-ex's own cost; a live model adds its latency per provider call.",
    ]
    return result("dspy", 10, "DSPy plugin", size, list(rows.values()), goals, notes)


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
