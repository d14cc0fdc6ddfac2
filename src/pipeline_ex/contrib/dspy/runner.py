"""Running one DSPy signature for a step: the plugin's state, the program, the LM, the record.

``DSPyState`` is what the plugin's ``init`` returns and every component shares: settings,
the training data source (re-read when its files change, so data added after start-up is
used without a reload), and the compile cache.  ``run_signature`` is the one path every
DSPy step takes: build the engine over the provider the step was given (taken from the
ProviderRegistry in the run's mode), get the program (``programs.compiled_program``), predict
under ``dspy.context(lm=...)`` (a per-thread override, never a global ``dspy.configure``),
record the observed metric for ``adaptive``, and report what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_ex.contrib.dspy.cache import CompileCache, MemoryCache
from pipeline_ex.contrib.dspy.engine import ProviderEngine, make_lm
from pipeline_ex.contrib.dspy.metrics import score
from pipeline_ex.contrib.dspy.programs import Compiled, Store, Task, compiled_program, predict
from pipeline_ex.contrib.dspy.settings import DSPySettings
from pipeline_ex.contrib.dspy.signatures import SignatureSpec
from pipeline_ex.contrib.dspy.step_config import StepDSPyConfig
from pipeline_ex.contrib.dspy.training import TrainingData, load_training_data
from pipeline_ex.log import get_logger

logger = get_logger(__name__)


class TrainingSource:
    """``training_data_path``, read again only when a file under it changed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: Any = None
        self._data: TrainingData | None = None

    def _current_stamp(self) -> Any:
        path = self.path
        if path is None or not path.exists():
            return None
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        stamp = []
        for file in files:
            try:
                info = file.stat()
            except OSError:
                continue
            stamp.append((str(file), info.st_mtime_ns, info.st_size))
        return tuple(stamp)

    def current(self) -> TrainingData | None:
        stamp = self._current_stamp()
        with self._lock:
            if stamp != self._stamp:
                path = self.path
                self._data = load_training_data(path) if stamp is not None and path else None
                self._stamp = stamp
            return self._data


@dataclass
class DSPyState:
    settings: DSPySettings
    training: TrainingSource
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.store = CompileCache(s.cache_dir) if s.cache_enabled else MemoryCache()

    def task(
        self, step: str, signature: SignatureSpec, config: StepDSPyConfig, scope: str | None = None
    ) -> Task:
        """``scope`` is the name training records are scoped to (the step's, by default)."""
        data = self.training.current()
        fields = [*signature.input_names, *signature.output_names]
        examples = data.examples_for(scope or step, fields) if data is not None else []
        return Task(step, signature, config, tuple(examples), self.settings.holdout_fraction)


def report(compiled: Compiled, engine: ProviderEngine) -> dict[str, Any]:
    """The ``dspy`` mapping of a step result."""
    return {
        "optimized": compiled.optimized,
        "cache_hit": compiled.cache_hit,
        "optimizer": compiled.optimizer,
        "num_demos": compiled.num_demos,
        "lm_calls": engine.calls,
        "fallback": False,
        "reason": compiled.reason,
    }


def engine_for(
    task: Task,
    provider: Any,
    provider_name: str,
    mode: str,
    options: Mapping[str, Any] | None = None,
) -> ProviderEngine:
    """The engine of one step execution; in mock mode it asks the mock provider to answer
    in DSPy's adapter format from the step's training examples."""
    hint = {"examples": list(task.examples)} if mode == "mock" else None
    return ProviderEngine(provider, provider_name, options, hint)


def run_signature(
    state: DSPyState, task: Task, inputs: Mapping[str, Any], engine: ProviderEngine
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(output fields, the ``dspy`` report) of one prediction of ``task``."""
    import dspy

    with dspy.context(lm=make_lm(engine)):
        compiled = compiled_program(task, state.settings, state.store, engine.provider_name)
        outputs = predict(compiled.program, task, inputs)
    observe(state, task, compiled, inputs, outputs)
    return outputs, report(compiled, engine)


def observe(
    state: DSPyState,
    task: Task,
    compiled: Compiled,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
) -> None:
    """``adaptive``: score a run whose inputs have a label and keep the recent scores."""
    settings = state.settings
    if settings.optimization_frequency != "adaptive" or compiled.key is None:
        return
    label = task.label_for(inputs)
    if label is None:
        return
    import dspy

    metric, _ = task.metric()
    value = score(metric, task.example(label), dspy.Prediction(**outputs))
    with state.store.lock(compiled.key):
        entry = state.store.read(compiled.key)
        if entry is None:
            return
        observed = [*(entry.meta.get("observed") or []), value][-settings.adaptive_window :]
        state.store.write(compiled.key, {**entry.meta, "observed": observed}, entry.program)
