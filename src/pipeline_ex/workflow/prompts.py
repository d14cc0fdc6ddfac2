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


#: Largest prompt file read (a prompt part is text for a model, not a data set).
MAX_PROMPT_FILE_BYTES = 8 * 1024 * 1024


def resolve_inside(base: Path, relative: str, what: str) -> Path:
    """A path strictly inside ``base``'s folder tree (``base`` itself is not a file name)."""
    try:
        root = base.resolve()
        target = (root / relative).resolve()
    except (ValueError, OSError) as exc:  # an embedded NUL byte, a symlink loop
        raise PromptError(f"{what} {relative!r} is not a usable path: {exc}") from None
    if target == root:
        raise PromptError(f"{what} {relative!r} names the folder {root} itself; refused")
    if root not in target.parents:
        raise PromptError(f"{what} {relative!r} escapes {root}; refused")
    return target


def _file_part(part: Mapping[str, Any], context: ExecutionContext) -> str:
    path = resolve_inside(context.base_dir, str(part["path"]), "prompt file")
    shown = repr(part["path"])
    if path.exists() and not path.is_file():  # a folder, a FIFO that would block, a device
        raise PromptError(f"prompt file {shown} is not a regular file")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PROMPT_FILE_BYTES + 1)
    except OSError as exc:
        raise PromptError(f"cannot read prompt file {shown}: {exc.strerror or exc}") from None
    if len(data) > MAX_PROMPT_FILE_BYTES:
        raise PromptError(f"prompt file {shown} is larger than {MAX_PROMPT_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PromptError(f"prompt file {shown} is not UTF-8 text: {exc.reason}") from None


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
