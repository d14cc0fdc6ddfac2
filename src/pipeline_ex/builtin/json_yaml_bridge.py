"""Built-in plugin ``json_yaml_bridge``: type-preserving YAML <-> JSON conversion.

"Type-preserving" means a YAML -> JSON -> YAML round trip gives back the same data: so a
YAML value JSON cannot represent exactly (a date, binary, a set, a non-string key, NaN) is
refused with its path instead of silently turned into a string.  When a schema is given the
data is validated while converting, with the path and line of each problem.

Contributes the ``format_convert`` step type (``source``, ``to: json|yaml``, optional
``schema``) and backs ``pipeline-ex convert IN OUT``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_ex.documents import Document, PathKey, format_path, load_yaml
from pipeline_ex.errors import DocumentError, InvalidInputError, Location, Problem
from pipeline_ex.plugins.behaviour import Plugin, StepTypes

FORMATS = ("json", "yaml")


class ConversionError(DocumentError):
    code = "conversion_failed"


def _json_safe_problems(value: Any, document: Document, path: PathKey = ()) -> list[Problem]:
    problems: list[Problem] = []
    stack: list[tuple[Any, PathKey]] = [(value, path)]
    while stack:
        current, here = stack.pop()
        if isinstance(current, Mapping):
            for key, item in current.items():
                if not isinstance(key, str):
                    problems.append(
                        document.problem(
                            here, f"key {key!r} is a {type(key).__name__}; JSON keys are strings"
                        )
                    )
                stack.append((item, (*here, str(key))))
        elif isinstance(current, list):
            stack.extend((item, (*here, i)) for i, item in enumerate(current))
        elif isinstance(current, float) and not math.isfinite(current):
            problems.append(document.problem(here, f"{current} has no JSON representation"))
        elif current is not None and not isinstance(current, str | int | float | bool):
            problems.append(
                document.problem(
                    here, f"a YAML {type(current).__name__} has no exact JSON type; quote it"
                )
            )
    return problems


def _schema_problems(
    data: Any, schema: Mapping[str, Any] | None, document: Document
) -> list[Problem]:
    if schema is None:
        return []
    # Imported here: this plugin is loaded by every Runtime, a --schema by few conversions.
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        validator = Draft202012Validator(dict(schema))
        validator.check_schema(dict(schema))
    except SchemaError as exc:
        raise InvalidInputError(
            f"the conversion schema is not valid JSON Schema: {exc.message}"
        ) from None
    return [
        document.problem(tuple(err.absolute_path), err.message)
        for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
    ]


def parse(text: str, fmt: str, file: str | None = None) -> Document:
    """Read JSON or YAML text into a Document (JSON errors carry their line)."""
    if fmt == "yaml":
        return load_yaml(text, file)
    try:
        return Document(json.loads(text), file, {})
    except json.JSONDecodeError as exc:
        raise ConversionError(
            [Problem(f"invalid JSON: {exc.msg}", Location(file, "", exc.lineno))]
        ) from None


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    import yaml  # here: every Runtime loads this plugin, few convert anything to YAML

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def convert_text(
    text: str,
    source: str,
    target: str,
    *,
    schema: Mapping[str, Any] | None = None,
    file: str | None = None,
) -> str:
    """Convert ``text`` from ``source`` to ``target`` format, validating on the way."""
    for fmt in (source, target):
        if fmt not in FORMATS:
            raise InvalidInputError(f"unknown format {fmt!r}; use json or yaml")
    document = parse(text, source, file)
    problems = _json_safe_problems(document.data, document)
    problems += _schema_problems(document.data, schema, document)
    if problems:
        raise ConversionError(problems)
    return dump(document.data, target)


def format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise InvalidInputError(
        f"{path}: cannot tell the format from {suffix!r}; use .json, .yaml or .yml"
    )


def convert_file(src: Path, dst: Path, schema: Mapping[str, Any] | None = None) -> None:
    """``pipeline-ex convert``: the formats come from the file extensions."""
    try:
        text = Path(src).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {src}: {exc.strerror or exc}") from None
    output = convert_text(
        text, format_of(Path(src)), format_of(Path(dst)), schema=schema, file=str(src)
    )
    Path(dst).write_text(output, encoding="utf-8")


class FormatConvertStep:
    """``format_convert``: turn text or data into JSON or YAML text inside a workflow."""

    def semantic_check(self, step: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        problems: list[tuple[tuple[str, ...], str]] = []
        if "source" not in step:
            problems.append(((), "format_convert needs 'source'"))
        if step.get("to") not in FORMATS:
            problems.append((("to",), "format_convert needs 'to': json or yaml"))
        return problems

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        source = step["source"]
        target = step["to"]
        schema = step.get("schema")
        if isinstance(source, str):
            origin = step.get("from") or ("json" if source.lstrip()[:1] in "[{" else "yaml")
            text = convert_text(source, origin, target, schema=schema)
        else:
            document = Document(source, None, {})
            problems = _json_safe_problems(source, document) + _schema_problems(
                source, schema, document
            )
            if problems:
                raise ConversionError(problems)
            text = dump(source, target)
        return {"success": True, "text": text, "format": target}


class JsonYamlBridgePlugin(Plugin):
    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {
            "name": "json_yaml_bridge",
            "version": "1.0.0",
            "api_version": 1,
            "description": "Type-preserving YAML <-> JSON conversion with schema validation",
            "capabilities": ["json_yaml_conversion"],
        }

    def get_step_types(self, state: Any) -> StepTypes:
        return [("format_convert", FormatConvertStep)]


__all__ = ["ConversionError", "JsonYamlBridgePlugin", "convert_file", "convert_text", "format_path"]
