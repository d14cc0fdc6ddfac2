"""Training data: JSONL, JSON or YAML files (or a folder of them) -> examples per step.

A file holds records, each a mapping of field name -> value, either as a list (JSON/YAML), one
record per line (JSONL), or a mapping ``{step name: [records]}`` scoping them to steps.  A
record may also carry ``step: NAME``.  A step's examples are the records meant for it (or for
no step in particular) that have every input and output field of its signature; other keys
are ignored, so one file can feed several steps.

Examples are split deterministically into a training part (what the optimizer compiles on)
and a held-out part (what ``pipeline-ex dspy optimize`` measures on): by the hash of each
example, so adding one example moves only that example, and the split is the same in every
process and on every machine.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_ex.documents import load_yaml_file
from pipeline_ex.errors import DocumentError, InvalidInputError

SUFFIXES = (".jsonl", ".json", ".yaml", ".yml")
#: The largest training file read (a bigger one is refused, naming it).
MAX_FILE_BYTES = 64 * 1024 * 1024

Example = dict[str, Any]


class TrainingDataError(InvalidInputError):
    """A training file that cannot be read as records; names the file and line."""

    code = "dspy_training_data_invalid"


@dataclass(frozen=True)
class Record:
    data: Mapping[str, Any]
    step: str | None
    source: str


@dataclass(frozen=True)
class TrainingData:
    """Every record found under ``training_data_path``, in file then record order."""

    root: Path
    files: tuple[Path, ...]
    records: tuple[Record, ...]

    def examples_for(self, step: str | None, fields: Sequence[str]) -> list[Example]:
        """The records for ``step`` that have all ``fields``, reduced to those fields."""
        wanted = list(fields)
        found: list[Example] = []
        for record in self.records:
            if record.step is not None and record.step != step:
                continue
            if all(name in record.data for name in wanted):
                found.append({name: record.data[name] for name in wanted})
        return found


def canonical(value: Any) -> str:
    """The JSON text hashes are taken over: sorted keys, no whitespace, any value as text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def data_hash(examples: Sequence[Example]) -> str:
    return hashlib.sha256(canonical(list(examples)).encode()).hexdigest()


def split(examples: Sequence[Example], fraction: float) -> tuple[list[Example], list[Example]]:
    """(train, held out): ``ceil(n * fraction)`` examples held out, at least one kept to
    train on, none held out below two examples."""
    if len(examples) < 2 or fraction <= 0:
        return list(examples), []
    ranked = sorted(examples, key=lambda e: hashlib.sha256(canonical(e).encode()).hexdigest())
    held = min(len(ranked) - 1, max(1, math.ceil(len(ranked) * fraction)))
    chosen = {id(e) for e in ranked[:held]}
    train = [e for e in examples if id(e) not in chosen]
    holdout = [e for e in examples if id(e) in chosen]
    return train, holdout


def _records(value: Any, source: str, step: str | None = None) -> list[Record]:
    if isinstance(value, Mapping) and value and all(isinstance(v, list) for v in value.values()):
        out: list[Record] = []
        for name, items in value.items():
            out += _records(items, f"{source} at {name}", str(name))
        return out
    if not isinstance(value, list):
        raise TrainingDataError(
            f"{source}: expected a list of records or a mapping of step name -> records"
        )
    records = []
    for index, item in enumerate(value):
        records.append(_record(item, f"{source}[{index}]", step))
    return records


def _record(item: Any, source: str, step: str | None) -> Record:
    if not isinstance(item, Mapping) or not all(isinstance(k, str) for k in item):
        raise TrainingDataError(f"{source}: a record must be a mapping of field name -> value")
    own = item.get("step", step)
    if own is not None and not isinstance(own, str):
        raise TrainingDataError(f"{source}: 'step' must be a step name, got {own!r}")
    data = {k: v for k, v in item.items() if k != "step"}
    return Record(data, own, source)


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise TrainingDataError(f"{path}: larger than {MAX_FILE_BYTES} bytes; refused")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingDataError(f"cannot read training file {path}: {exc}") from None


def read_file(path: Path) -> list[Record]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        records = []
        for number, line in enumerate(_read_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
            records.append(_record(item, f"{path}:{number}", None))
        return records
    if suffix == ".json":
        try:
            value = json.loads(_read_text(path))
        except json.JSONDecodeError as exc:
            raise TrainingDataError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        return _records(value, str(path))
    if suffix in (".yaml", ".yml"):
        try:
            value = load_yaml_file(path).data
        except DocumentError as exc:
            raise TrainingDataError(f"training file {exc.message}") from None
        return _records(value, str(path))
    raise TrainingDataError(f"{path}: training files are {', '.join(SUFFIXES)}")


def load_training_data(path: Path) -> TrainingData | None:
    """The records under ``path`` (a file or a folder of files); ``None`` when it is missing."""
    if path.is_dir():
        files = tuple(
            sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        )
    elif path.is_file():
        files = (path,)
    else:
        return None
    records: list[Record] = []
    for file in files:
        records += read_file(file)
    return TrainingData(path, files, tuple(records))
