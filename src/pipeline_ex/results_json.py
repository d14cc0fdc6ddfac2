"""Step results as strict JSON: what ``--json`` prints and ``output_to_file`` writes.

Results are whatever steps and providers returned, so they are not JSON by construction:
``{{1e308 * 10}}`` is ``inf``, a plugin may return a set or a tuple-keyed mapping, and a
loop can nest a value deeper than any encoder recurses.  Python's ``json`` module would
print ``NaN``/``Infinity`` (which is not JSON), refuse odd keys, or die with a
``RecursionError``.  Here the value is converted first, iteratively:

* a non-finite float (``nan``, ``inf``, ``-inf``) becomes ``null``, as JavaScript's
  ``JSON.stringify`` does;
* tuples become arrays; a mapping key that JSON cannot hold becomes its text; any other
  object becomes its text (as before, ``default=str``);
* a value nested deeper than ``MAX_DEPTH`` (or containing itself) is refused with
  ``ResultEncodingError`` (code ``result_not_encodable``) instead of crashing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pipeline_ex.errors import PipelineExError

#: Deepest value encoded; well inside the recursion limit of the json encoder.
MAX_DEPTH = 400

_KEY_TYPES = (str, int, float, bool)


class ResultEncodingError(PipelineExError):
    code = "result_not_encodable"


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception as exc:  # an object whose __str__ raises is still written somehow
        return f"<{type(value).__name__}: str() raised {type(exc).__name__}>"


def _key(key: Any) -> Any:
    if key is None or isinstance(key, _KEY_TYPES):
        return key
    return _text(key)


def jsonable(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` as plain JSON data (dict, list, str, int, finite float, bool, None)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, int, Any, Any]] = [(value, 0, root, 0)]
    while stack:
        item, depth, parent, slot = stack.pop()
        if depth > max_depth:
            raise ResultEncodingError(
                f"result nested deeper than {max_depth} levels (or containing itself); "
                "it cannot be written as JSON"
            )
        if isinstance(item, Mapping):
            pairs = [(_key(k), v) for k, v in item.items()]
            converted: Any = dict.fromkeys(k for k, _ in pairs)  # keeps the key order
            stack.extend((v, depth + 1, converted, k) for k, v in pairs)
        elif isinstance(item, list | tuple):
            converted = [None] * len(item)
            stack.extend((v, depth + 1, converted, i) for i, v in enumerate(item))
        elif isinstance(item, float):
            converted = item if math.isfinite(item) else None
        elif item is None or isinstance(item, str | int | bool):
            converted = item
        else:
            converted = _text(item)
        parent[slot] = converted
    return root[0]


def dumps(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text for ``value`` (``allow_nan=False`` holds by construction)."""
    return json.dumps(jsonable(value), indent=indent, ensure_ascii=False, allow_nan=False)
