"""Safe, bounded YAML loading that remembers where every value came from.

Workflow files and plugin configs are untrusted input.  They are parsed with PyYAML's
``SafeLoader`` only (a ``!!python/...`` tag is refused), and the node graph is walked once
with a budget before anything else touches the data: an alias bomb ("billion laughs")
expands to more nodes than the budget and is refused quickly, before schema validation
or execution could traverse it.  The same walk records the line of every path so that
errors can point at ``file:line``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline_ex.errors import DocumentError, Location, Problem, YAMLDocumentError

#: Upper bound on the number of nodes a document may expand to (aliases counted each time).
MAX_NODES = 200_000
#: Upper bound on nesting depth; deeper documents are refused rather than overflowing.
MAX_DEPTH = 200
#: Upper bound on the size of the text itself.
MAX_BYTES = 16 * 1024 * 1024

PathKey = tuple[str | int, ...]


def format_path(path: PathKey) -> str:
    """``("workflow", "steps", 2, "prompt")`` -> ``workflow.steps[2].prompt``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class Document:
    """Parsed data plus its origin, used for error locations and relative paths."""

    data: Any
    file: str | None = None
    lines: dict[PathKey, int] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def location(self, path: PathKey) -> Location:
        return Location(self.file, format_path(path), self.line_of(path))

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(message, self.location(path))


def _error(file: str | None, message: str, line: int | None = None) -> YAMLDocumentError:
    return YAMLDocumentError([Problem(message, Location(file, "", line))])


class _DepthError(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` whose (recursive) composer refuses nesting deeper than ``MAX_DEPTH``.

    Checking while composing, not afterwards, keeps a deeply nested document from ever
    reaching Python's recursion limit: it is refused with a clear message at its line.
    """

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _DepthError(event.start_mark.line + 1)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, file: str | None) -> None:
    """Refuse a node graph whose expansion (aliases counted each time) exceeds the budget.

    Sizes are computed once per node (aliases share nodes), so an alias bomb is measured
    and refused in time proportional to its text, not to its expansion.  A recursive alias
    (a node containing itself) is refused too: nothing downstream could traverse it.
    """
    size: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            in_progress.discard(key)
            total = 1 + sum(size[id(child)] for child in children)
            if total > MAX_NODES:
                raise _error(
                    file,
                    f"document expands to more than {MAX_NODES} nodes (an alias bomb?); refused",
                    node.start_mark.line + 1,
                )
            size[key] = total
            continue
        if key in size:
            continue
        if key in in_progress:
            raise _error(
                file,
                "recursive alias (a node that contains itself); refused",
                node.start_mark.line + 1,
            )
        in_progress.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children)


def _line_map(root: yaml.Node) -> dict[PathKey, int]:
    """The line of each path, visiting every node once.

    A mapping entry's line is its key's line (where an editor shows ``steps:``); content
    reached again through an alias keeps the line of the alias itself.
    """
    lines: dict[PathKey, int] = {(): root.start_mark.line + 1}
    visited: set[int] = set()
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    while stack:
        current, path = stack.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
                child = (*path, key)
                lines.setdefault(child, key_node.start_mark.line + 1)
                stack.append((value_node, child))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                child = (*path, index)
                lines.setdefault(child, item.start_mark.line + 1)
                stack.append((item, child))
    return lines


def load_yaml(text: str | bytes, file: str | None = None) -> Document:
    """Parse one YAML document safely; every failure is a ``YAMLDocumentError``."""
    if len(text) > MAX_BYTES:
        raise _error(file, f"document larger than {MAX_BYTES} bytes; refused")
    try:
        loader = _BoundedLoader(text)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise _error(file, f"invalid YAML: {exc}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, file, {})
        _check_expansion(node, file)
        lines = _line_map(node)
        data = loader.construct_document(node)
    except _DepthError as exc:
        raise _error(
            file, f"document nested deeper than {MAX_DEPTH} levels; refused", exc.line
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if "could not determine a constructor" in detail:
            detail += " (only plain YAML is accepted; tags such as !!python/... are refused)"
        raise _error(file, f"invalid YAML: {detail}", line) from None
    except yaml.YAMLError as exc:
        raise _error(file, f"invalid YAML: {exc}") from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise _error(file, f"invalid YAML: {type(exc).__name__}: {exc}") from None
    finally:
        loader.dispose()
    return Document(data, file, lines)


def check_data_bounds(data: Any, file: str | None = None) -> None:
    """The same budgets for data that did not come from YAML (a mapping given to ``run``):
    no deeper than ``MAX_DEPTH``, no more than ``MAX_NODES`` values, no cycles."""

    def refuse(message: str) -> DocumentError:
        return DocumentError([Problem(message, Location(file, "", None))])

    budget = MAX_NODES
    active: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(data, 0, False)]
    while stack:
        value, depth, leaving = stack.pop()
        if leaving:
            active.discard(id(value))
            continue
        budget -= 1
        if budget < 0:
            raise refuse(f"document has more than {MAX_NODES} values; refused")
        if depth > MAX_DEPTH:
            raise refuse(f"document nested deeper than {MAX_DEPTH} levels; refused")
        if isinstance(value, Mapping):
            children: list[Any] = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            children = list(value)
        else:
            continue
        if id(value) in active:
            raise refuse("document contains itself (a cycle); refused")
        active.add(id(value))
        stack.append((value, depth, True))
        stack.extend((child, depth + 1, False) for child in children)


def load_yaml_file(path: str | Path) -> Document:
    file = str(path)
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise _error(file, f"cannot read file: {exc.strerror or exc}") from None
    return load_yaml(text, file)


def require_mapping(doc: Document, what: str) -> Mapping[str, Any]:
    if not isinstance(doc.data, Mapping):
        found = type(doc.data).__name__ if doc.data is not None else "an empty document"
        raise YAMLDocumentError([doc.problem((), f"{what} must be a mapping, found {found}")])
    return doc.data
