"""From a step's ``dspy_signature`` to a DSPy ``Signature`` class.

Parsing (``parse_signature``) is plain Python, so ``pipeline-ex validate`` can report a bad
signature without importing DSPy; building (``build_signature``) imports it.  A field is
``{name, type, description?}``; ``type`` is one of ``FIELD_TYPES`` (pipeline_ex's names and
JSON Schema's are both accepted, so ``string`` and ``str`` mean the same).
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_ex.errors import InvalidInputError

#: Accepted ``type`` names -> the canonical name (the Python annotation DSPy gets).
FIELD_TYPES: Mapping[str, str] = {
    "str": "str",
    "string": "str",
    "text": "str",
    "int": "int",
    "integer": "int",
    "float": "float",
    "number": "float",
    "bool": "bool",
    "boolean": "bool",
    "list": "list[str]",
    "array": "list[str]",
    "list[str]": "list[str]",
    "list[int]": "list[int]",
    "list[float]": "list[float]",
    "dict": "dict[str, Any]",
    "object": "dict[str, Any]",
}
#: Names DSPy gives a meaning of its own (``reasoning`` is what chain_of_thought adds).
RESERVED_NAMES = frozenset({"reasoning", "instructions", "signature", "demos", "completed"})


class SignatureError(InvalidInputError):
    """A ``dspy_signature`` that cannot become a DSPy signature; names the field and why."""

    code = "dspy_signature_invalid"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "str"
    description: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "description": self.description}


@dataclass(frozen=True)
class SignatureSpec:
    """A parsed ``dspy_signature``: what the cache key and the DSPy class are built from."""

    inputs: tuple[FieldSpec, ...]
    outputs: tuple[FieldSpec, ...]
    instructions: str = ""

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.outputs)

    def fingerprint(self) -> dict[str, Any]:
        """A JSON-able description that changes whenever the DSPy signature would."""
        return {
            "inputs": [f.as_dict() for f in self.inputs],
            "outputs": [f.as_dict() for f in self.outputs],
            "instructions": self.instructions,
        }


def _fields(raw: Any, key: str, where: str, seen: set[str]) -> tuple[FieldSpec, ...]:
    here = f"{where}.{key}"
    if not isinstance(raw, list) or not raw:
        raise SignatureError(f"{here} must be a non-empty list of fields")
    fields: list[FieldSpec] = []
    for index, item in enumerate(raw):
        at = f"{here}[{index}]"
        if not isinstance(item, Mapping):
            raise SignatureError(f"{at} must be a mapping with name, type, description")
        extra = sorted(set(item) - {"name", "type", "description"})
        if extra:
            raise SignatureError(f"{at} has unknown key(s) {', '.join(map(repr, extra))}")
        name = item.get("name")
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise SignatureError(f"{at}.name must be a Python identifier, got {name!r}")
        if name.startswith("_") or name in RESERVED_NAMES:
            raise SignatureError(f"{at}.name {name!r} is reserved by DSPy; choose another name")
        if name in seen:
            raise SignatureError(f"{at}.name {name!r} is used twice in the signature")
        seen.add(name)
        kind = item.get("type", "str")
        if kind not in FIELD_TYPES:
            raise SignatureError(
                f"{at}.type {kind!r} is not supported; use one of {', '.join(FIELD_TYPES)}"
            )
        description = item.get("description", "")
        if not isinstance(description, str):
            raise SignatureError(f"{at}.description must be text, got {description!r}")
        fields.append(FieldSpec(name, FIELD_TYPES[kind], description))
    return tuple(fields)


def parse_signature(raw: Any, where: str = "dspy_signature") -> SignatureSpec:
    """Check a ``dspy_signature`` mapping; ``SignatureError`` names what is wrong and where."""
    if not isinstance(raw, Mapping):
        raise SignatureError(f"{where} must be a mapping with input_fields and output_fields")
    extra = sorted(set(raw) - {"input_fields", "output_fields", "instructions"})
    if extra:
        raise SignatureError(f"{where} has unknown key(s) {', '.join(map(repr, extra))}")
    instructions = raw.get("instructions", "")
    if not isinstance(instructions, str):
        raise SignatureError(f"{where}.instructions must be text, got {instructions!r}")
    seen: set[str] = set()
    inputs = _fields(raw.get("input_fields"), "input_fields", where, seen)
    outputs = _fields(raw.get("output_fields"), "output_fields", where, seen)
    return SignatureSpec(inputs, outputs, instructions.strip())


def _annotation(kind: str) -> Any:
    return {
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
        "list[str]": list[str],
        "list[int]": list[int],
        "list[float]": list[float],
        "dict[str, Any]": dict[str, Any],
    }[kind]


def build_signature(spec: SignatureSpec, name: str = "PipelineExSignature") -> Any:
    """The DSPy ``Signature`` class for ``spec`` (imports DSPy)."""
    import dspy

    def described(maker: Any, f: FieldSpec) -> Any:
        return maker(desc=f.description) if f.description else maker()

    fields: dict[str, Any] = {}
    for f in spec.inputs:
        fields[f.name] = (_annotation(f.type), described(dspy.InputField, f))
    for f in spec.outputs:
        fields[f.name] = (_annotation(f.type), described(dspy.OutputField, f))
    instructions = spec.instructions or None
    try:
        return dspy.Signature(fields, instructions, signature_name=name)
    except (TypeError, ValueError) as exc:
        raise SignatureError(f"DSPy refused the signature: {exc}") from exc
