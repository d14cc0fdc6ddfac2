"""Prompt building from pipeline_ex's parts: ``static``, ``file``, ``previous_response``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PipelineExError
from pipeline_ex.workflow.expressions import get_path, missing
from pipeline_ex.workflow.templates import to_text

if TYPE_CHECKING:
    from pipeline_ex.workflow.context import ExecutionContext

PART_TYPES = ("static", "file", "previous_response")
#: The key each part type cannot do without (checked with the document's other meaning
#: checks rather than by schema if/then, which tripled the schema's cost per part).
PART_REQUIRED = {"static": "content", "file": "path", "previous_response": "step"}


class PromptError(PipelineExError):
    code = "prompt_error"


def resolve_inside(base: Path, relative: str, what: str) -> Path:
    """``base / relative`` but never outside ``base``'s folder tree."""
    root = base.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise PromptError(f"{what} {relative!r} escapes {root}; refused")
    return target


def _file_part(part: Mapping[str, Any], context: ExecutionContext) -> str:
    path = resolve_inside(context.base_dir, str(part["path"]), "prompt file")
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(
            f"cannot read prompt file {part['path']!r}: {exc.strerror or exc}"
        ) from None


def _previous_response_part(part: Mapping[str, Any], context: ExecutionContext) -> str:
    name = str(part["step"])
    strict = part.get("strict", True)
    if name not in context.results:
        if strict:
            raise PromptError(f"previous_response: no result for step {name!r}")
        return ""
    value = context.results[name]
    extract = part.get("extract")
    if extract:
        value = get_path(value, str(extract))
        if missing(value):
            if strict:
                raise PromptError(f"previous_response: step {name!r} has no field {extract!r}")
            return ""
    return to_text(value)


def build_prompt(parts: list[Mapping[str, Any]] | str | None, context: ExecutionContext) -> str:
    """Join the parts with a newline; a mapping result is JSON-encoded."""
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    texts: list[str] = []
    for part in parts:
        kind = part.get("type")
        if kind == "static":
            texts.append(to_text(part.get("content", "")))
        elif kind == "file":
            texts.append(_file_part(part, context))
        elif kind == "previous_response":
            texts.append(_previous_response_part(part, context))
        else:
            raise PromptError(f"unsupported prompt part type {kind!r}; supported: {PART_TYPES}")
    return "\n".join(texts)
