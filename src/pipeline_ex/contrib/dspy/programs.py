"""Programs: a step's DSPy module, compiled or loaded from the cache, and measured.

``Task`` is everything that defines one step's program: its signature, its ``dspy_config``
and its training examples (split into the part compiled on and the part held out).
``compiled_program`` returns the program the step should run:

- optimization off (plugin or step) or no training examples: the plain module, unoptimized;
- a fresh cache entry: loaded, no compile (``cache_hit``);
- otherwise compiled with the configured optimizer under the key's lock, after reading the
  entry again (another run may have compiled it while this one waited), and saved.

An entry is stale when it is older than ``optimization_frequency`` allows, or (``adaptive``)
when the mean metric observed on the step's recent labelled runs fell below the threshold.
Every call here expects to run inside ``dspy.context(lm=...)``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline_ex.contrib.dspy.cache import CacheEntry, cache_key
from pipeline_ex.contrib.dspy.metrics import Metric, resolve_metric, score
from pipeline_ex.contrib.dspy.optimizers import compile_with, optimizer_name
from pipeline_ex.contrib.dspy.settings import DSPySettings
from pipeline_ex.contrib.dspy.signatures import SignatureSpec, build_signature
from pipeline_ex.contrib.dspy.step_config import StepDSPyConfig
from pipeline_ex.contrib.dspy.training import Example, data_hash, split
from pipeline_ex.log import get_logger

logger = get_logger(__name__)

#: ``adaptive`` judges the metric only once this many labelled runs were observed.
MIN_OBSERVATIONS = 3


class Store(Protocol):
    """``CompileCache`` (on disk) or ``MemoryCache`` (``cache_enabled: false``)."""

    def read(self, key: str) -> CacheEntry | None: ...

    def write(
        self, key: str, meta: Mapping[str, Any], program: Mapping[str, Any]
    ) -> CacheEntry: ...

    def lock(self, key: str, timeout: float = ...) -> Any: ...

    def entries(self) -> list[CacheEntry]: ...

    def clear(self) -> int: ...


@dataclass(frozen=True)
class Task:
    step: str
    signature: SignatureSpec
    config: StepDSPyConfig
    examples: tuple[Example, ...] = ()
    holdout_fraction: float = 0.25
    train: tuple[Example, ...] = field(init=False)
    holdout: tuple[Example, ...] = field(init=False)

    def __post_init__(self) -> None:
        train, holdout = split(self.examples, self.holdout_fraction)
        object.__setattr__(self, "train", tuple(train))
        object.__setattr__(self, "holdout", tuple(holdout))

    def metric(self) -> tuple[Metric, str]:
        return resolve_metric(self.config.metric, self.signature.output_names)

    def example(self, record: Mapping[str, Any]) -> Any:
        import dspy

        return dspy.Example(**record).with_inputs(*self.signature.input_names)

    def label_for(self, inputs: Mapping[str, Any]) -> Example | None:
        """The training example whose inputs are exactly ``inputs`` (first found)."""
        names = self.signature.input_names
        for example in self.examples:
            if all(example.get(n) == inputs.get(n) for n in names):
                return example
        return None


@dataclass
class Compiled:
    program: Any
    optimized: bool = False
    cache_hit: bool = False
    optimizer: str | None = None
    key: str | None = None
    reason: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_demos(self) -> int:
        return sum(len(getattr(p, "demos", []) or []) for p in self.program.predictors())


def build_program(task: Task) -> Any:
    import dspy

    signature = build_signature(task.signature)
    if task.config.module == "chain_of_thought":
        return dspy.ChainOfThought(signature)
    return dspy.Predict(signature)


def task_key(task: Task, settings: DSPySettings, provider: str) -> str:
    return cache_key(
        {
            "signature": task.signature.fingerprint(),
            "step_config": task.config.fingerprint(),
            "data": data_hash(task.train),
            "optimizer": settings.optimizer_settings(),
            "provider": provider,
            "dspy": importlib.metadata.version("dspy"),
        }
    )


def staleness(entry: CacheEntry, settings: DSPySettings, now: float | None = None) -> str | None:
    """Why ``entry`` must be compiled again, or None while it is fresh."""
    limit = settings.max_age
    age = entry.age(now)
    if limit is not None and age > limit:
        return (
            f"compiled {age / 3600:.1f} h ago, older than optimization_frequency "
            f"{settings.optimization_frequency!r} allows"
        )
    if settings.optimization_frequency == "adaptive":
        observed = [float(v) for v in entry.meta.get("observed") or []]
        recent = observed[-settings.adaptive_window :]
        if len(recent) >= min(MIN_OBSERVATIONS, settings.adaptive_window):
            mean = statistics.fmean(recent)
            if mean < settings.adaptive_threshold:
                return (
                    f"observed metric {mean:.2f} over the last {len(recent)} runs is below "
                    f"adaptive_threshold {settings.adaptive_threshold:g}"
                )
    return None


def _load(task: Task, entry: CacheEntry, optimizer: str) -> Compiled:
    program = build_program(task)
    program.load_state(dict(entry.program))
    return Compiled(program, True, True, optimizer, entry.key, "cache hit", entry.meta)


def compiled_program(
    task: Task,
    settings: DSPySettings,
    store: Store,
    provider: str,
    *,
    force: bool = False,
    on_compile: Callable[[], None] | None = None,
) -> Compiled:
    """The program ``task``'s step runs (see the module docstring)."""
    if not settings.optimization_enabled or not task.config.optimization_enabled:
        return Compiled(build_program(task), reason="optimization disabled")
    if not task.train:
        return Compiled(build_program(task), reason="no training examples for this step")
    optimizer = optimizer_name(settings.evaluation_mode)
    key = task_key(task, settings, provider)
    started = time.time()
    if not force:
        entry = store.read(key)
        if entry is not None and staleness(entry, settings) is None:
            return _load(task, entry, optimizer)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(store.lock(key))
        except OSError as exc:  # an unusable cache folder (or a lock held for too long)
            logger.warning("dspy: compiling step %s without the cache lock: %s", task.step, exc)
        entry = store.read(key)
        why = "no compiled program yet" if entry is None else staleness(entry, settings)
        if entry is not None and why is None and not (force and entry.created_at < started):
            return _load(task, entry, optimizer)  # another run compiled it meanwhile
        if force and why is None:
            why = "compile requested"
        if on_compile is not None:
            on_compile()
        return _compile(task, settings, store, provider, key, str(why))
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def _compile(
    task: Task, settings: DSPySettings, store: Store, provider: str, key: str, why: str
) -> Compiled:
    optimizer = optimizer_name(settings.evaluation_mode)
    metric, metric_name = task.metric()
    trainset = [task.example(e) for e in task.train]
    logger.info("dspy: compiling step %s with %s (%s)", task.step, optimizer, why)
    program = compile_with(settings, task.config, metric, build_program(task), trainset)
    compiled = Compiled(program, True, False, optimizer, key, why)
    meta = {
        "created_at": time.time(),
        "step": task.step,
        "provider": provider,
        "optimizer": optimizer,
        "optimizer_settings": settings.optimizer_settings(),
        "module": task.config.module,
        "metric": metric_name,
        "train_size": len(task.train),
        "holdout_size": len(task.holdout),
        "data_hash": data_hash(task.train),
        "signature": task.signature.fingerprint(),
        "observed": [],
        "reason": why,
        "num_demos": compiled.num_demos,
    }
    compiled.meta = meta
    try:
        compiled.meta = store.write(key, meta, program.dump_state()).meta
    except OSError as exc:  # the compile still serves this run; the next one tries again
        logger.warning("dspy: could not cache the program of step %s: %s", task.step, exc)
    return compiled


def predict(program: Any, task: Task, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Run the program; the output fields as a plain mapping."""
    prediction = program(**{name: inputs[name] for name in task.signature.input_names})
    return {name: prediction.get(name) for name in task.signature.output_names}


def evaluate(
    program: Any,
    task: Task,
    examples: Sequence[Example],
    on_item: Callable[[], None] | None = None,
) -> tuple[float | None, int]:
    """(mean metric over ``examples``, errors); a failed prediction scores 0."""
    if not examples:
        return None, 0
    metric, _ = task.metric()
    total, errors = 0.0, 0
    for record in examples:
        example = task.example(record)
        try:
            prediction = program(**example.inputs())
            total += score(metric, example, prediction)
        except Exception as exc:
            errors += 1
            logger.info("dspy: evaluation of step %s failed on one example: %s", task.step, exc)
        if on_item is not None:
            on_item()
    return total / len(examples), errors
