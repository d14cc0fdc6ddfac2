"""Data and helpers the DSPy tests share (a uniquely named module: ``conftest`` is not
importable reliably when several test folders have one)."""

from __future__ import annotations

import json
from typing import Any

CAPITALS = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of Kenya?", "Nairobi"),
    ("What is the capital of Canada?", "Ottawa"),
    ("What is the capital of Peru?", "Lima"),
]

QA_STEP = {
    "name": "answer",
    "type": "dspy_claude",
    "dspy_signature": {
        "instructions": "Answer with a city name.",
        "input_fields": [{"name": "question", "type": "str"}],
        "output_fields": [{"name": "answer", "type": "str", "description": "a city"}],
    },
    "dspy_config": {"few_shot_examples": 2},
    "inputs": {"question": "What is the capital of France?"},
}


def qa_workflow(**step_changes: Any) -> dict[str, Any]:
    step = {**QA_STEP, **step_changes}
    return {"workflow": {"name": "qa", "steps": [step]}}


def capitals_jsonl(pairs: list[tuple[str, str]] = CAPITALS) -> str:
    return "".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs)


def never_right(example: Any, prediction: Any, trace: Any = None) -> bool:
    """A metric that scores every prediction 0 (drives ``adaptive`` below its threshold)."""
    return False
