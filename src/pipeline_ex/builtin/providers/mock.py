"""Deterministic mock providers: the default mode, no network.

A response is chosen by pattern: the first registered pattern found in the prompt wins
(``re:`` prefix for a regular expression, ``*`` or ``""`` for anything); otherwise the reply
is ``Mock response for: <first 50 characters of the prompt>``.  Patterns come from tests
(``set_response_pattern``) or from a fixture file (``--mock-responses FILE``).

Asked for DSPy's adapter format (the ``dspy_adapter`` option the DSPy plugin's engine sets),
a mock answers with the output fields of the DSPy signature in the prompt, drawn from the
step's training examples when the input matches and from the fixtures otherwise
(``dspy_reply``).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline_ex.documents import load_yaml_file
from pipeline_ex.errors import InvalidInputError
from pipeline_ex.registries.providers import FALLBACK_PRIORITY

Response = str | Mapping[str, Any]


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of a ``re:`` pattern (anything else matches as plain text)."""
    if not pattern.startswith("re:"):
        return re.compile(re.escape(pattern))
    try:
        return re.compile(pattern[3:])
    except re.error as exc:
        raise InvalidInputError(
            f"mock response pattern {pattern!r} is not a valid regex: {exc}"
        ) from None


class MockProvider:
    """A provider whose answers are a pure function of the prompt and the patterns."""

    #: Built-in providers are fallbacks: ``select`` prefers any plugin provider of the
    #: default priority over them (see ``pipeline_ex.registries.providers``).
    priority = FALLBACK_PRIORITY

    def __init__(self, name: str, family: str, model: str) -> None:
        self.name = name
        self.family = family
        self.model = model
        self._patterns: dict[str, Response] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def set_response_pattern(self, pattern: str, response: Response) -> None:
        self.set_response_patterns({pattern: response})

    def set_response_patterns(self, patterns: Mapping[str, Response]) -> None:
        """Add patterns; a ``re:`` pattern is compiled now, so a bad one is refused here
        (``InvalidInputError``) rather than when a step happens to use it."""
        for pattern in patterns:
            compile_pattern(pattern)
        with self._lock:
            self._patterns = {**self._patterns, **patterns}

    def reset(self) -> None:
        with self._lock:
            self._patterns = {}

    def _match(self, prompt: str) -> Response | None:
        for pattern, response in self._patterns.items():
            if pattern in ("", "*"):
                return response
            if pattern.startswith("re:"):
                if compile_pattern(pattern).search(prompt):
                    return response
            elif pattern in prompt:
                return response
        return None

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        hint = options.get(DSPY_ADAPTER_OPTION)
        if isinstance(hint, Mapping):
            text = dspy_reply(prompt, str(options.get("system_prompt") or ""), hint, self._match)
            if text is not None:
                return {
                    "success": True,
                    "cost": 0.0,
                    "provider": self.name,
                    "model": options.get("model") or self.model,
                    "mock": True,
                    "text": text,
                }
        chosen = self._match(prompt)
        reply: dict[str, Any] = {
            "success": True,
            "cost": 0.0,
            "provider": self.name,
            "model": options.get("model") or self.model,
            "mock": True,
        }
        if chosen is None:
            reply["text"] = f"Mock response for: {prompt[:50]}"
        elif isinstance(chosen, str):
            reply["text"] = chosen
        else:
            reply.update(chosen)
            reply.setdefault("text", "")
        return reply


def load_response_file(path: str | Path) -> dict[str, dict[str, Response]]:
    """Read a fixture file: ``{claude: {pattern: response}, gemini: {...}, "*": {...}}``."""
    document = load_yaml_file(path)
    data = document.data
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{path}: mock responses must be a mapping of family -> patterns")
    out: dict[str, dict[str, Response]] = {}
    for family, patterns in data.items():
        if family not in ("claude", "gemini", "*") or not isinstance(patterns, Mapping):
            raise InvalidInputError(
                f"{path}: expected keys claude, gemini or '*' each mapping pattern -> response; "
                f"found {family!r}"
            )
        for pattern, response in patterns.items():
            if not isinstance(response, str | Mapping):
                raise InvalidInputError(
                    f"{path}: response for pattern {pattern!r} must be text or a mapping"
                )
        out[str(family)] = {str(k): v for k, v in patterns.items()}
    return out


# -- DSPy's adapter format ----------------------------------------------------------------
#: The option with which the DSPy plugin's engine asks for an answer in DSPy's adapter format:
#: ``{"examples": [{field: value, ...}, ...]}``, the step's training examples.
DSPY_ADAPTER_OPTION = "dspy_adapter"
_FIELD_LINE = re.compile(r"^\d+\. `(\w+)` \(([^)]*)\)", re.MULTILINE)
_MARKER = re.compile(r"\[\[ ## (\w+) ## \]\]")
_JSON_ASK = "Respond with a JSON object"
_TYPE_DEFAULTS: dict[str, Any] = {"int": 0, "float": 0.0, "bool": False}


def _section(system: str, title: str) -> list[tuple[str, str]]:
    """The ``(name, type)`` fields listed under ``Your input/output fields are:``."""
    start = system.find(title)
    if start < 0:
        return []
    rest = system[start + len(title) :]
    ends = [i for i in (rest.find("Your "), rest.find("All interactions")) if i >= 0]
    return _FIELD_LINE.findall(rest[: min(ends)] if ends else rest)


def _input_values(prompt: str, names: list[str]) -> dict[str, str]:
    """Each input field's value from its last ``[[ ## name ## ]]`` block (the final request
    comes last, after any demos)."""
    values: dict[str, str] = {}
    marks = list(_MARKER.finditer(prompt))
    for index, mark in enumerate(marks):
        if mark.group(1) not in names:
            continue
        end = marks[index + 1].start() if index + 1 < len(marks) else len(prompt)
        value = prompt[mark.end() : end]
        value = value.split("\n\nRespond with", 1)[0].split("\n\nAssistant:\n", 1)[0]
        values[mark.group(1)] = value.strip()
    return values


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _default(kind: str, inputs: Mapping[str, str]) -> Any:
    if kind in _TYPE_DEFAULTS:
        return _TYPE_DEFAULTS[kind]
    if kind.startswith("list"):
        return []
    if kind.startswith("dict"):
        return {}
    return f"Mock response for: {' '.join(inputs.values())[:50]}"


def dspy_reply(
    prompt: str,
    system: str,
    hint: Mapping[str, Any],
    match: Callable[[str], Response | None],
) -> str | None:
    """A deterministic answer in DSPy's adapter format, or None if this is not a DSPy prompt.

    The output fields come from the system prompt DSPy's adapter wrote.  Their values: the
    training example whose inputs equal the request's, else a mock fixture matching the
    request (a mapping gives values by field name, text is used for every text field), else
    ``Mock response for: ...`` (or the type's zero for numbers, booleans, lists, mappings).
    Answered in the chat format, or as JSON when the request asks for a JSON object.
    """
    outputs = _section(system, "Your output fields are:")
    if not outputs:
        return None
    input_names = [name for name, _ in _section(system, "Your input fields are:")]
    inputs = _input_values(prompt, input_names)
    answer: dict[str, Any] = {}
    for example in hint.get("examples") or []:
        if (
            isinstance(example, Mapping)
            and input_names
            and all(
                name in example and _as_text(example[name]).strip() == inputs.get(name)
                for name in input_names
            )
        ):
            answer = {name: example[name] for name, _ in outputs if name in example}
            break
    if len(answer) < len(outputs):
        fixture = match("\n".join(inputs.values()))
        for name, kind in outputs:
            if name in answer:
                continue
            if isinstance(fixture, Mapping) and name in fixture:
                answer[name] = fixture[name]
            elif isinstance(fixture, str) and kind == "str":
                answer[name] = fixture
            else:
                answer[name] = _default(kind, inputs)
    ordered = {name: answer[name] for name, _ in outputs}
    if _JSON_ASK in prompt.rsplit("[[ ## ", 1)[-1]:
        return json.dumps(ordered, ensure_ascii=False)
    blocks = [f"[[ ## {name} ## ]]\n{_as_text(value)}" for name, value in ordered.items()]
    return "\n\n".join([*blocks, "[[ ## completed ## ]]"])
