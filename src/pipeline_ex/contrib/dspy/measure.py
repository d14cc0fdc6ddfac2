"""``pipeline-ex dspy optimize``: compile a workflow's DSPy steps now, and measure the gain.

For each DSPy signature of the workflow (a ``dspy_claude``/``dspy_gemini`` step, or a link of
a ``dspy_chain``) the metric is taken on the held-out part of its training examples twice:
with the plain module (before) and with the program compiled on the training part (after).
The compile replaces the cached program, so the next run of the workflow loads it.  Every
language-model call goes through the provider the run's mode gives the step, as in a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pipeline_ex.contrib.dspy.engine import make_lm
from pipeline_ex.contrib.dspy.programs import Task, build_program, compiled_program, evaluate
from pipeline_ex.contrib.dspy.runner import DSPyState, engine_for
from pipeline_ex.contrib.dspy.settings import DSPyConfigError
from pipeline_ex.contrib.dspy.signatures import parse_signature
from pipeline_ex.contrib.dspy.step_config import parse_step_config

STEP_FAMILIES = {"dspy_claude": "claude", "dspy_gemini": "gemini"}


@dataclass(frozen=True)
class Target:
    """One signature to optimize: where it is and which model family answers it."""

    name: str
    family: str
    task: Task


@dataclass
class Outcome:
    step: str
    provider: str
    status: str  # "optimized" or "skipped"
    reason: str = ""
    optimizer: str | None = None
    train_size: int = 0
    holdout_size: int = 0
    metric_before: float | None = None
    metric_after: float | None = None
    errors_before: int = 0
    errors_after: int = 0
    num_demos: int = 0
    lm_calls: int = 0
    key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Progress(Protocol):
    """What the command shows while it works (the CLI draws a rich progress bar):
    ``begin`` a phase (``before``, ``compile``, ``after``), ``advance`` per example."""

    def begin(self, target: Target, phase: str, total: int | None) -> None: ...

    def advance(self) -> None: ...


class _Silent:
    def begin(self, target: Target, phase: str, total: int | None) -> None:
        """Nothing to show."""

    def advance(self) -> None:
        """Nothing to show."""


def _walk(steps: Any) -> Iterator[Mapping[str, Any]]:
    for step in steps or []:
        if isinstance(step, Mapping):
            yield step
            yield from _walk(step.get("steps"))


def targets(workflow: Mapping[str, Any], state: DSPyState, only: str | None = None) -> list[Target]:
    """The DSPy signatures of ``workflow`` (``only``: one step, or one ``STEP.LINK``)."""
    defaults = workflow.get("dspy_config")
    found: list[Target] = []
    for step in _walk(workflow.get("steps")):
        kind, name = step.get("type"), str(step.get("name"))
        if kind in STEP_FAMILIES:
            links = [(name, step.get("dspy_signature"), step.get("dspy_config"))]
            family = STEP_FAMILIES[str(kind)]
        elif kind == "dspy_chain":
            links = [
                (f"{name}.{link.get('name')}", link.get("dspy_signature"), link.get("dspy_config"))
                for link in step.get("signatures") or []
                if isinstance(link, Mapping)
            ]
            family = str(step.get("provider", "claude"))
        else:
            continue
        for link_name, raw_signature, raw_config in links:
            if only is not None and only not in (name, link_name):
                continue
            signature = parse_signature(raw_signature, f"step {link_name!r}: dspy_signature")
            config = parse_step_config(raw_config, defaults, f"step {link_name!r}: dspy_config")
            found.append(Target(link_name, family, state.task(link_name, signature, config)))
    if only is not None and not found:
        raise DSPyConfigError(f"the workflow has no DSPy step or chain link named {only!r}")
    return found


def optimize(
    target: Target,
    state: DSPyState,
    provider: Any,
    provider_name: str,
    mode: str,
    progress: Progress | None = None,
) -> Outcome:
    """Measure, compile (replacing the cached program), measure again."""
    import dspy

    task = target.task
    outcome = Outcome(
        target.name,
        provider_name,
        "skipped",
        train_size=len(task.train),
        holdout_size=len(task.holdout),
    )
    if not state.settings.optimization_enabled or not task.config.optimization_enabled:
        outcome.reason = "optimization disabled"
        return outcome
    if not task.train:
        outcome.reason = "no training examples for this step"
        return outcome
    show: Progress = progress if progress is not None else _Silent()
    engine = engine_for(task, provider, provider_name, mode)
    tick: Callable[[], None] = show.advance
    with dspy.context(lm=make_lm(engine)):
        show.begin(target, "before", len(task.holdout))
        before, outcome.errors_before = evaluate(build_program(task), task, task.holdout, tick)
        show.begin(target, "compile", None)
        compiled = compiled_program(task, state.settings, state.store, provider_name, force=True)
        show.begin(target, "after", len(task.holdout))
        after, outcome.errors_after = evaluate(compiled.program, task, task.holdout, tick)
    outcome.status = "optimized"
    outcome.reason = "" if task.holdout else "too few examples to hold any out"
    outcome.optimizer = compiled.optimizer
    outcome.metric_before, outcome.metric_after = before, after
    outcome.num_demos = compiled.num_demos
    outcome.lm_calls = engine.calls
    outcome.key = compiled.key
    return outcome
