"""Metrics: how a prediction is scored against a labelled example.

The default is exact match on the signature's output fields (strings compared with
surrounding whitespace removed).  When DSPy asks while bootstrapping (``trace`` given) the
answer is all-or-nothing, so only fully correct traces become demos; when it evaluates
(``trace`` None) it is the share of output fields that match, so a held-out score moves
with every field.  A step's ``dspy_config.metric`` names another function by dotted path
(``package.module.function`` or ``package.module:function``) with DSPy's metric signature
``(example, prediction, trace=None) -> float | bool``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from pipeline_ex.contrib.dspy.settings import DSPyConfigError

Metric = Callable[..., Any]


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip() == actual.strip()
    return bool(expected == actual)


class ExactMatch:
    """Exact match on ``fields``; picklable and comparable, so the cache key can name it."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)

    def __call__(self, example: Any, prediction: Any, trace: Any = None) -> float | bool:
        hits = sum(_same(example.get(f), getattr(prediction, f, None)) for f in self.fields)
        if trace is not None:
            return hits == len(self.fields)
        return hits / len(self.fields) if self.fields else 0.0

    def __repr__(self) -> str:
        return f"exact_match({', '.join(self.fields)})"


def resolve_metric(reference: str | None, fields: Sequence[str]) -> tuple[Metric, str]:
    """(metric, name): the default exact match, or the function ``reference`` names."""
    if reference is None:
        return ExactMatch(fields), "exact_match"
    module, sep, attr = reference.partition(":")
    if not sep:
        module, _, attr = reference.rpartition(".")
    if not module or not attr:
        raise DSPyConfigError(
            f"dspy_config.metric {reference!r} must be a dotted path: package.module.function"
        )
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise DSPyConfigError(
            f"dspy_config.metric {reference!r} cannot be imported: {exc}"
        ) from exc
    if not callable(target):
        raise DSPyConfigError(f"dspy_config.metric {reference!r} is not callable")
    return target, reference


def score(metric: Metric, example: Any, prediction: Any) -> float:
    """The metric as a number (a bool counts 1 or 0)."""
    value = metric(example, prediction)
    return float(value) if isinstance(value, int | float) else float(bool(value))
