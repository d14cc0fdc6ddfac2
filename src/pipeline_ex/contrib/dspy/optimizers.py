"""``evaluation_mode`` -> a DSPy optimizer, and how each one compiles.

- ``bootstrap_few_shot``: ``BootstrapFewShot`` with ``few_shot_examples`` bootstrapped and
  labelled demos and ``bootstrap_iterations`` rounds.
- ``mipro``: ``MIPROv2`` (needs optuna, part of the ``dspy`` extra) without ``auto``: a few
  instruction and demo candidates, ``mipro_num_trials`` trials, full evaluation (no
  minibatches, the training sets of a pipeline step are small).
- ``copro``: ``COPRO``, instruction search of ``copro_breadth`` x ``copro_depth``.

The optimizer runs inside the caller's ``dspy.context(lm=...)``, so its own calls (teacher
traces, instruction proposals) go through the same pipeline provider as the step's.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pipeline_ex.contrib.dspy.metrics import Metric
from pipeline_ex.contrib.dspy.settings import DSPySettings
from pipeline_ex.contrib.dspy.step_config import StepDSPyConfig

#: evaluation_mode -> the DSPy class name, as reported in a step's ``dspy.optimizer``.
OPTIMIZER_NAMES = {
    "bootstrap_few_shot": "BootstrapFewShot",
    "mipro": "MIPROv2",
    "copro": "COPRO",
}
MIPRO_CANDIDATES = 3


def optimizer_name(mode: str) -> str:
    return OPTIMIZER_NAMES[mode]


_stdout_lock = threading.Lock()
_stdout_depth = 0
_stdout_saved: Any = None


@contextmanager
def chatter_to_stderr() -> Iterator[None]:
    """DSPy's optimizers ``print`` their progress; stdout belongs to the command's output
    (``pipeline-ex run --json`` prints one JSON object there), so while any compile runs,
    stdout is stderr.  Reference-counted, so compiles in parallel threads restore it once."""
    global _stdout_depth, _stdout_saved
    with _stdout_lock:
        if _stdout_depth == 0:
            _stdout_saved = sys.stdout
            sys.stdout = sys.stderr
        _stdout_depth += 1
    try:
        yield
    finally:
        with _stdout_lock:
            _stdout_depth -= 1
            if _stdout_depth == 0:
                sys.stdout = _stdout_saved
                _stdout_saved = None


def compile_with(
    settings: DSPySettings,
    config: StepDSPyConfig,
    metric: Metric,
    program: Any,
    trainset: Sequence[Any],
) -> Any:
    """Compile ``program`` on ``trainset`` (DSPy Examples) with the configured optimizer."""
    with chatter_to_stderr():
        return _compile(settings, config, metric, program, trainset)


def _compile(
    settings: DSPySettings,
    config: StepDSPyConfig,
    metric: Metric,
    program: Any,
    trainset: Sequence[Any],
) -> Any:
    import dspy

    mode = settings.evaluation_mode
    demos = config.few_shot_examples
    if mode == "bootstrap_few_shot":
        optimizer = dspy.BootstrapFewShot(
            metric=metric,
            max_bootstrapped_demos=demos,
            max_labeled_demos=demos,
            max_rounds=config.bootstrap_iterations,
        )
        return optimizer.compile(program, trainset=list(trainset))
    if mode == "mipro":
        mipro = dspy.MIPROv2(
            metric=metric,
            auto=None,
            num_candidates=MIPRO_CANDIDATES,
            max_bootstrapped_demos=demos,
            max_labeled_demos=demos,
            num_threads=settings.num_threads,
            seed=0,
            verbose=False,
            track_stats=False,
        )
        return mipro.compile(
            program,
            trainset=list(trainset),
            valset=list(trainset),
            num_trials=settings.mipro_num_trials,
            minibatch=False,
        )
    if mode == "copro":
        copro = dspy.COPRO(
            metric=metric,
            breadth=settings.copro_breadth,
            depth=settings.copro_depth,
            init_temperature=1.0,
        )
        return copro.compile(
            program,
            trainset=list(trainset),
            eval_kwargs={"num_threads": settings.num_threads, "display_progress": False},
        )
    raise ValueError(f"unknown evaluation_mode {mode!r}")  # settings refuse it first
