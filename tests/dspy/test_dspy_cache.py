"""The compile cache: keys, freshness (frequency, adaptive, training data), atomic writes,
concurrent compiles of one key; and DummyLM-level unit tests of compiling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dspy.utils import DummyLM
from dspy_helpers import CAPITALS, QA_STEP, capitals_jsonl, qa_workflow

import dspy
from pipeline_ex import Runtime
from pipeline_ex.contrib.dspy.cache import CompileCache, MemoryCache
from pipeline_ex.contrib.dspy.programs import Task, compiled_program, evaluate, staleness
from pipeline_ex.contrib.dspy.settings import DSPySettings
from pipeline_ex.contrib.dspy.signatures import parse_signature
from pipeline_ex.contrib.dspy.step_config import StepDSPyConfig

SIGNATURE = parse_signature(QA_STEP["dspy_signature"])
EXAMPLES = tuple({"question": q, "answer": a} for q, a in CAPITALS)
DUMMY_ANSWERS = {q: {"answer": a} for q, a in CAPITALS}


def task(examples: tuple[dict[str, Any], ...] = EXAMPLES, **config: Any) -> Task:
    return Task("answer", SIGNATURE, StepDSPyConfig(few_shot_examples=2, **config), examples)


def settings(tmp_path: Path, **changes: Any) -> DSPySettings:
    return DSPySettings(cache_dir=tmp_path / "cache", **changes)


def test_compile_with_dummy_lm_bootstraps_demos_saves_them_and_scores_held_out(
    tmp_path: Path,
) -> None:
    t = task()
    assert len(t.train) == 4 and len(t.holdout) == 2
    store = CompileCache(tmp_path / "cache")
    # DummyLM answers each question from its table: the teacher's traces pass the metric,
    # so BootstrapFewShot keeps two of them as demos; the held-out score is then measured.
    with dspy.context(lm=DummyLM(DUMMY_ANSWERS)):
        compiled = compiled_program(t, settings(tmp_path), store, "dummy")
        after, errors = evaluate(compiled.program, t, t.holdout)
    assert compiled.optimized and not compiled.cache_hit
    assert compiled.optimizer == "BootstrapFewShot"
    assert compiled.num_demos == 2
    assert after == 1.0 and errors == 0
    saved = store.read(compiled.key or "")
    assert saved is not None and saved.meta["num_demos"] == 2
    assert saved.meta["train_size"] == 4 and saved.meta["holdout_size"] == 2


def test_cache_hit_loads_without_compiling(tmp_path: Path) -> None:
    store = CompileCache(tmp_path / "cache")
    compiles: list[int] = []
    with dspy.context(lm=DummyLM(DUMMY_ANSWERS)):
        first = compiled_program(task(), settings(tmp_path), store, "dummy")
        second = compiled_program(
            task(), settings(tmp_path), store, "dummy", on_compile=lambda: compiles.append(1)
        )
    assert second.cache_hit and compiles == []
    assert second.key == first.key
    assert [dict(d) for d in second.program.demos] == [d.toDict() for d in first.program.demos]


def test_key_changes_with_signature_module_data_optimizer_and_provider(tmp_path: Path) -> None:
    from pipeline_ex.contrib.dspy.programs import task_key

    base = task_key(task(), settings(tmp_path), "mock_claude")
    other_signature = Task(
        "answer",
        parse_signature({**QA_STEP["dspy_signature"], "instructions": "Other."}),
        StepDSPyConfig(few_shot_examples=2),
        EXAMPLES,
    )
    variants = [
        task_key(other_signature, settings(tmp_path), "mock_claude"),
        task_key(task(module="chain_of_thought"), settings(tmp_path), "mock_claude"),
        task_key(task(EXAMPLES[:-1]), settings(tmp_path), "mock_claude"),
        task_key(task(), settings(tmp_path, evaluation_mode="copro"), "mock_claude"),
        task_key(task(), settings(tmp_path), "mock_gemini"),
    ]
    assert base not in variants and len(set(variants)) == len(variants)
    assert task_key(task(), settings(tmp_path), "mock_claude") == base


def _age(store: CompileCache, key: str, seconds: float) -> None:
    entry = store.read(key)
    assert entry is not None
    store.write(key, {**entry.meta, "created_at": time.time() - seconds}, entry.program)


@pytest.mark.parametrize(
    ("frequency", "age_days", "stale"),
    [
        ("daily", 2, True),
        ("daily", 0.5, False),
        ("weekly", 2, False),
        ("weekly", 8, True),
        ("monthly", 29, False),
        ("monthly", 31, True),
        ("adaptive", 400, False),
    ],
)
def test_cache_invalidation_by_frequency(
    tmp_path: Path, frequency: str, age_days: float, stale: bool
) -> None:
    store = CompileCache(tmp_path / "cache")
    config = settings(tmp_path, optimization_frequency=frequency)
    with dspy.context(lm=DummyLM(DUMMY_ANSWERS)):
        first = compiled_program(task(), config, store, "dummy")
        _age(store, first.key or "", age_days * 86_400)
        again = compiled_program(task(), config, store, "dummy")
    assert again.cache_hit is not stale
    if stale:
        assert f"older than optimization_frequency {frequency!r}" in again.reason
        assert store.read(again.key or "").age() < 60  # the recompiled entry replaced it


def test_adaptive_recompiles_when_the_observed_metric_falls_below_the_threshold(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    config = plugin_config(optimization_frequency="adaptive", adaptive_threshold=0.5)
    runtime = runtimes(config)
    workflow = qa_workflow(dspy_config={"metric": "dspy_helpers.never_right"})
    reports = [runtime.run(workflow)["answer"]["dspy"] for _ in range(5)]
    assert [r["cache_hit"] for r in reports] == [False, True, True, False, True]
    assert (
        "observed metric 0.00 over the last 3 runs is below adaptive_threshold 0.5"
        in (reports[3]["reason"])
    )


def test_changed_training_file_recompiles(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    config = plugin_config()
    runtime = runtimes(config)
    first = runtime.run(qa_workflow())["answer"]["dspy"]
    assert runtime.run(qa_workflow())["answer"]["dspy"]["cache_hit"] is True
    data = config.parent / "training_data" / "capitals.jsonl"
    data.write_text(capitals_jsonl([*CAPITALS, ("What is the capital of Chile?", "Santiago")]))
    changed = runtime.run(qa_workflow())["answer"]["dspy"]
    assert first["cache_hit"] is False and changed["cache_hit"] is False
    assert changed["reason"] == "no compiled program yet"  # a new key: new data hash
    store = runtime.plugins.registry.get("dspy_plugin").state.store
    assert len(store.entries()) == 2


def test_half_written_cache_file_is_never_read(tmp_path: Path) -> None:
    store = CompileCache(tmp_path / "cache")
    with dspy.context(lm=DummyLM(DUMMY_ANSWERS)):
        first = compiled_program(task(), settings(tmp_path), store, "dummy")
        path = store.path(first.key or "")
        text = path.read_text()
        path.write_text(text[: len(text) // 2])  # as a crash mid-write would leave it
        assert store.read(first.key or "") is None
        again = compiled_program(task(), settings(tmp_path), store, "dummy")
    assert not again.cache_hit and again.reason == "no compiled program yet"
    data = json.loads(path.read_text())
    data["program"]["predict"] = {"demos": []}  # well-formed JSON, wrong content
    path.write_text(json.dumps(data))
    assert store.read(first.key or "") is None


def test_failed_write_keeps_the_old_entry_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CompileCache(tmp_path / "cache")
    store.write("0" * 32, {"created_at": 1.0}, {"p": 1})

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.write("0" * 32, {"created_at": 2.0}, {"p": 2})
    monkeypatch.undo()
    entry = store.read("0" * 32)
    assert entry is not None and entry.program == {"p": 1}
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["0" * 32 + ".json"]


def test_concurrent_compiles_of_one_key_compile_once_threads(tmp_path: Path) -> None:
    store = CompileCache(tmp_path / "cache")
    compiles: list[int] = []
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def slow_compile() -> None:
        compiles.append(1)
        time.sleep(0.3)  # hold the lock while the others wait on it

    def run() -> None:
        with dspy.context(lm=DummyLM(DUMMY_ANSWERS)):
            barrier.wait()
            results.append(
                compiled_program(
                    task(), settings(tmp_path), store, "dummy", on_compile=slow_compile
                )
            )

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 4 and len(compiles) == 1
    assert sorted(r.cache_hit for r in results) == [False, True, True, True]
    assert len({r.key for r in results}) == 1


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import dspy
    from dspy.utils import DummyLM
    sys.path.insert(0, {tests!r})
    from test_dspy_cache import DUMMY_ANSWERS, settings, task
    from pipeline_ex.contrib.dspy.cache import CompileCache
    from pipeline_ex.contrib.dspy.programs import compiled_program

    root = Path({root!r})
    (root / ("ready-" + sys.argv[1])).touch()
    while len(list(root.glob("ready-*"))) < 2:
        time.sleep(0.01)

    def slow():
        print("compiling", flush=True)
        time.sleep(0.5)

    with dspy.context(lm=DummyLM(DUMMY_ANSWERS)):
        result = compiled_program(task(), settings(root), CompileCache(root / "cache"), "dummy",
                                  on_compile=slow)
    print("hit" if result.cache_hit else "compiled", result.key)
    """
)


@pytest.mark.slow  # two interpreters importing DSPy
def test_concurrent_compiles_of_one_key_compile_once_processes(tmp_path: Path) -> None:
    script = CHILD.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for i in range(2)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    assert all(child.returncode == 0 for child in children), outputs
    lines = [out.split() for out, _ in outputs]
    assert sum(words.count("compiling") for words in lines) == 1
    assert sorted(words[-2] for words in lines) == ["compiled", "hit"]
    assert lines[0][-1] == lines[1][-1]  # one key


def test_memory_cache_when_cache_disabled_compiles_once_per_process(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = runtimes(plugin_config(cache_enabled=False))
    state = runtime.plugins.registry.get("dspy_plugin").state
    assert isinstance(state.store, MemoryCache)
    reports = [runtime.run(qa_workflow())["answer"]["dspy"] for _ in range(2)]
    assert [r["cache_hit"] for r in reports] == [False, True]
    assert not (tmp_path / ".pipeline_ex").exists()


def test_staleness_of_a_fresh_entry_is_none(tmp_path: Path) -> None:
    store = CompileCache(tmp_path / "cache")
    entry = store.write("1" * 32, {"created_at": time.time()}, {})
    assert staleness(entry, settings(tmp_path)) is None


def test_unusable_cache_dir_still_compiles_and_runs_with_a_warning(
    plugin_config: Callable[..., Path],
    runtimes: Callable[..., Runtime],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    runtime = runtimes(plugin_config(cache_dir=str(blocker / "cache")))
    result = runtime.run(qa_workflow())["answer"]
    assert result["answer"] == "Paris" and result["dspy"]["optimized"]
    assert result["dspy"]["fallback"] is False
    messages = [r.getMessage() for r in caplog.records]
    assert any("without the cache lock" in m for m in messages)
    assert any("could not cache the program of step answer" in m for m in messages)
