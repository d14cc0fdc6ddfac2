"""Safe, bounded YAML loading that remembers where every value came from.

Workflow files and plugin configs are untrusted input.  Files are read with a bound (a
regular file of at most ``MAX_BYTES``; ``/dev/zero`` and FIFOs are refused, not read
forever), parsed with PyYAML's ``SafeLoader`` only (a ``!!python/...`` tag is refused), and
the node and depth budgets are enforced while the node graph is composed: a huge flat list
or an alias bomb ("billion laughs") stops at the budget, in time and memory proportional to
the budget, before construction, schema validation or execution could traverse it.  A walk
of the finished graph records the line of every path so that errors can point at
``file:line``.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pipeline_ex.errors import DocumentError, YAMLDocumentError
from pipeline_ex.records import MutableRecord

if TYPE_CHECKING:
    import yaml

    from pipeline_ex.problems import Location, Problem

#: Upper bound on the number of nodes a document may expand to (aliases counted each time).
MAX_NODES = 200_000
#: Upper bound on nesting depth; deeper documents are refused rather than overflowing.
MAX_DEPTH = 200
#: Upper bound on the size of the text itself.
MAX_BYTES = 16 * 1024 * 1024

PathKey = tuple[str | int, ...]


def nearest_line(lines: Mapping[PathKey, int], path: PathKey) -> int | None:
    """The line of ``path`` in ``lines``, or of its nearest ancestor that has one (a value
    written inline, such as a flow mapping's member, has no line of its own)."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def format_path(path: PathKey) -> str:
    """``("workflow", "steps", 2, "prompt")`` -> ``workflow.steps[2].prompt``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class Document(MutableRecord):
    """Parsed data plus its origin, used for error locations and relative paths."""

    __slots__ = ("data", "file", "lines")
    FIELDS: ClassVar[tuple[str, ...]] = ("data", "file", "lines")

    def __init__(
        self, data: Any, file: str | None = None, lines: dict[PathKey, int] | None = None
    ) -> None:
        self.data = data
        self.file = file
        self.lines: dict[PathKey, int] = {} if lines is None else lines

    @property
    def base_dir(self) -> Path:
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        return nearest_line(self.lines, path)

    def location(self, path: PathKey) -> Location:
        from pipeline_ex.problems import Location

        return Location(self.file, format_path(path), self.line_of(path))

    def problem(self, path: PathKey, message: str) -> Problem:
        from pipeline_ex.problems import Problem

        return Problem(message, self.location(path))


def _error(file: str | None, message: str, line: int | None = None) -> YAMLDocumentError:
    from pipeline_ex.problems import Location, Problem

    return YAMLDocumentError([Problem(message, Location(file, "", line))])


class _RefusedNode(Exception):
    """The composer stopped: too deep, too many nodes, or an alias inside itself."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


@functools.cache
def _bounded_loader() -> type[yaml.SafeLoader]:
    """The loader class, defined on first use: PyYAML's import (~15 ms) is paid by a
    process that reads a YAML document, not by every ``import`` of this module."""
    import yaml

    class _BoundedLoader(yaml.SafeLoader):
        """``SafeLoader`` whose (recursive) composer enforces the budgets while it composes.

        Nesting deeper than ``MAX_DEPTH`` is refused before it can reach Python's recursion
        limit.  Nodes are counted as they are composed, an alias by the expanded size of the
        node it repeats (known once that node is finished), so a flat 16 MB list or an alias
        bomb stops at the ``MAX_NODES``-th node: time and memory are bounded by the budget,
        not by the document.  An alias used inside the node it names (a recursive alias) is
        refused: nothing downstream could traverse it.
        """

        def __init__(self, stream: str | bytes) -> None:
            super().__init__(stream)
            self._depth = 0
            self._nodes = 0  # composed so far, aliases counted by their expanded size
            self._sizes: dict[int, int] = {}  # id(finished node) -> its expanded size

        def _count(self, size: int, event: yaml.Event) -> None:
            self._nodes += size
            if self._nodes > MAX_NODES:
                raise _RefusedNode(
                    f"document expands to more than {MAX_NODES} nodes (an alias bomb?); refused",
                    _line(event),
                )

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent):
                target = self.anchors.get(event.anchor)
                if target is not None:  # (an undefined alias is PyYAML's own error)
                    size = self._sizes.get(id(target))
                    if size is None:
                        raise _RefusedNode(
                            "recursive alias (a node that contains itself); refused",
                            _line(event),
                        )
                    self._count(size, event)
                return super().compose_node(parent, index)  # type: ignore[no-any-return]
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise _RefusedNode(
                        f"document nested deeper than {MAX_DEPTH} levels; refused",
                        _line(event),
                    )
                before = self._nodes
                self._count(1, event)
                node = super().compose_node(parent, index)
                if node is not None:
                    self._sizes[id(node)] = self._nodes - before
                return node  # type: ignore[no-any-return]
            finally:
                self._depth -= 1

    return _BoundedLoader


def __getattr__(name: str) -> object:
    if name == "_BoundedLoader":  # the class, for code (and tests) that name it
        return _bounded_loader()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _line_map(root: yaml.Node) -> dict[PathKey, int]:
    """The line of each path, visiting every node once.

    A mapping entry's line is its key's line (where an editor shows ``steps:``); content
    reached again through an alias keeps the line of the alias itself.
    """
    import yaml

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
    import yaml

    if len(text) > MAX_BYTES:
        raise _error(file, f"document larger than {MAX_BYTES} bytes; refused")
    try:
        loader = _bounded_loader()(text)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise _error(file, f"invalid YAML: {exc}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, file, {})
        lines = _line_map(node)
        data = loader.construct_document(node)
    except _RefusedNode as exc:
        raise _error(file, exc.message, exc.line) from None
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
    no deeper than ``MAX_DEPTH``, no more than ``MAX_NODES`` values, no cycles.

    Every run of a mapping pays this walk, so plain values are told apart by their exact
    type before any ``isinstance`` (an ABC check costs ~10x a type comparison), and the
    walk recurses (at most ``MAX_DEPTH`` deep) instead of keeping a stack of tuples."""

    def refuse(message: str) -> DocumentError:
        from pipeline_ex.problems import Location, Problem

        return DocumentError([Problem(message, Location(file, "", None))])

    budget = MAX_NODES - 1  # the root itself
    active: set[int] = set()

    def visit(container: Any, depth: int) -> None:
        nonlocal budget
        if id(container) in active:
            raise refuse("document contains itself (a cycle); refused")
        children: Any = container
        kind = type(container)
        if kind is dict or (kind is not list and isinstance(container, Mapping)):
            children = [*container.keys(), *container.values()]
        if not children:
            return
        budget -= len(children)
        if budget < 0:
            raise refuse(f"document has more than {MAX_NODES} values; refused")
        if depth >= MAX_DEPTH:
            raise refuse(f"document nested deeper than {MAX_DEPTH} levels; refused")
        active.add(id(container))
        for child in children:
            kind = type(child)
            if kind is str or kind is int or kind is float or kind is bool or child is None:
                continue
            if kind is dict and child and depth + 1 < MAX_DEPTH:
                # A mapping of plain keys and values (a prompt part, options: most of a
                # workflow) is counted here, without a call; it cannot hold a cycle.
                for key, value in child.items():
                    kind = type(key)
                    if not (kind is str or kind is int or kind is float or kind is bool):
                        break
                    kind = type(value)
                    if not (
                        kind is str or kind is int or kind is float or kind is bool or value is None
                    ):
                        break
                else:
                    budget -= 2 * len(child)
                    if budget < 0:
                        raise refuse(f"document has more than {MAX_NODES} values; refused")
                    continue
            if kind is dict or kind is list or isinstance(child, Mapping | list | tuple):
                visit(child, depth + 1)
        active.discard(id(container))

    if isinstance(data, Mapping | list | tuple):
        visit(data, 0)


def read_document_bytes(path: str | Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, read with a bound.

    A document path is untrusted too: ``/dev/zero`` would be read forever and a FIFO would
    block on open, both before any size check.  The file is opened non-blocking (a FIFO
    opens at once), must be a regular file by ``fstat``, and is read up to ``limit + 1``
    bytes whatever its size claims.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file (a folder, device, FIFO or socket)")
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as handle:
        # Sized by the file, not by the limit (``read(limit)`` allocates ``limit`` bytes
        # up front), and read on while a file that is growing still has more to give.
        chunks = [handle.read(min(info.st_size, limit) + 1)]
        total = len(chunks[0])
        while chunks[-1] and total <= limit:
            chunks.append(handle.read(min(1 << 20, limit + 1 - total)))
            total += len(chunks[-1])
    return b"".join(chunks)


def load_yaml_file(path: str | Path) -> Document:
    file = str(path)
    try:
        text = read_document_bytes(path)
    except OSError as exc:
        raise _error(file, f"cannot read file: {exc.strerror or exc}") from None
    return load_yaml(text, file)


def require_mapping(doc: Document, what: str) -> Mapping[str, Any]:
    if not isinstance(doc.data, Mapping):
        found = type(doc.data).__name__ if doc.data is not None else "an empty document"
        raise YAMLDocumentError([doc.problem((), f"{what} must be a mapping, found {found}")])
    return doc.data
