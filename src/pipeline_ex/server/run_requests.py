"""``POST /runs`` bodies: a workflow as YAML or JSON, chosen by ``Content-Type``, and its
inputs from the query string and the body's top-level ``inputs`` mapping.

The body is read with a byte limit before anything parses it (a ``Content-Length`` over the
limit is refused without reading at all), and parsed with the same safe, bounded loaders as
a workflow file (:func:`pipeline_ex.documents.load_yaml`, ``check_data_bounds``), so a
request can do nothing a file given to ``pipeline-ex run`` could not.

A run reads ``file`` prompt parts relative to its document's folder and writes
``output_to_file`` under its output folder.  A document that came over HTTP has no folder,
and the server's working directory is not the client's to read, so every run gets a fresh
empty scratch folder (removed afterwards) as both: a ``file`` part finds nothing there,
and written files are discarded (the results carry what the steps returned).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_ex.cli.options import parse_value
from pipeline_ex.documents import (
    Document,
    PathKey,
    check_data_bounds,
    load_yaml,
    require_mapping,
)
from pipeline_ex.errors import DocumentError, InvalidInputError, Location, Problem

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
#: How the submitted document is named in error locations.
REQUEST_FILE = "<request>"


class UnsupportedMediaType(InvalidInputError):
    code = "unsupported_media_type"


class BodyTooLarge(InvalidInputError):
    code = "body_too_large"


def body_kind(content_type: str | None) -> str:
    """``json`` or ``yaml`` from a ``Content-Type`` header (parameters such as charset are
    ignored: both loaders read UTF-8); anything else is refused with the accepted types."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    if media in YAML_TYPES:
        return "yaml"
    accepted = ", ".join(sorted(JSON_TYPES | YAML_TYPES))
    raise UnsupportedMediaType(
        f"Content-Type {media or '(none)'!r} is not a workflow; send one of: {accepted}"
    )


async def read_bounded(
    chunks: AsyncIterator[bytes], limit: int, content_length: str | None
) -> bytes:
    """The whole body, refused as soon as it is known to be larger than ``limit``."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise InvalidInputError(f"Content-Length {content_length!r} is not a number") from None
        if declared > limit:
            raise BodyTooLarge(f"the body ({declared} bytes) is larger than {limit} bytes")
    received = bytearray()
    async for chunk in chunks:
        received += chunk
        if len(received) > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
    return bytes(received)


class RequestDocument(Document):
    """A workflow that came over HTTP: its folder is the run's scratch folder, whatever
    its (display) file name says."""

    __slots__ = ("folder",)
    FIELDS = (*Document.FIELDS, "folder")

    def __init__(
        self,
        data: Any,
        file: str | None = None,
        lines: dict[PathKey, int] | None = None,
        *,
        folder: Path | None = None,
    ) -> None:
        super().__init__(data, file, lines)
        self.folder = Path() if folder is None else folder

    @property
    def base_dir(self) -> Path:
        return self.folder


@dataclass(frozen=True)
class RunRequest:
    document: Document
    inputs: dict[str, Any]
    name: str


def _load_json(body: bytes) -> Document:
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise _document_error("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _document_error(f"invalid JSON: {exc}", code="json_invalid") from None
    check_data_bounds(data, REQUEST_FILE)
    if not isinstance(data, Mapping):  # as a YAML body whose root is not a mapping
        found = type(data).__name__ if data is not None else "null"
        raise _document_error(
            f"a workflow document must be a JSON object, found {found}", code="json_invalid"
        )
    return Document(data, REQUEST_FILE, {})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _document_error(message: str, code: str | None = None) -> DocumentError:
    return DocumentError([Problem(message, Location(REQUEST_FILE, "", None))], code=code)


def parse_run_request(body: bytes, kind: str, query: Mapping[str, str], folder: Path) -> RunRequest:
    """The document and inputs of a run; every failure is a typed input error (exit 2)."""
    loaded = _load_json(body) if kind == "json" else load_yaml(body, REQUEST_FILE)
    data = require_mapping(loaded, "a workflow document")
    data = dict(data)
    from_body = data.pop("inputs", None)
    if from_body is None:
        from_body = {}
    if not isinstance(from_body, Mapping) or not all(isinstance(k, str) for k in from_body):
        raise InvalidInputError(
            "the body's 'inputs' must be a mapping of names to values", code="inputs_invalid"
        )
    clash = sorted(set(from_body) & set(query))
    if clash:
        raise InvalidInputError(
            f"inputs given both in the query and in the body: {', '.join(clash)}",
            code="inputs_invalid",
        )
    inputs = {**from_body, **{key: parse_value(value) for key, value in query.items()}}
    document = RequestDocument(data, REQUEST_FILE, loaded.lines, folder=folder)
    workflow = data.get("workflow")
    name = workflow.get("name") if isinstance(workflow, Mapping) else None
    return RunRequest(document=document, inputs=inputs, name=str(name or "workflow"))
