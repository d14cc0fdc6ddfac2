"""The contract check answers like ``inspect.signature`` would, on every function shape."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytest

from pipeline_ex.plugins.adapter import _one_argument_from_code, _takes_one_argument


def _slow(fn: Any) -> bool:
    try:
        inspect.signature(fn).bind(object())
    except TypeError:
        return False
    return True


class Shapes:
    def method(self, state: Any) -> None: ...
    def method_none(self) -> None: ...
    def method_two(self, a: Any, b: Any) -> None: ...
    @staticmethod
    def static(state: Any) -> None: ...
    @classmethod
    def klass(cls, state: Any) -> None: ...


def _decorated(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


SHAPES: list[Any] = [
    lambda: None,
    lambda a: None,
    lambda a, b: None,
    lambda a, b=1: None,
    lambda a=1: None,
    lambda *args: None,
    lambda a, *args: None,
    lambda a, b, *args: None,
    lambda a, *, k: None,
    lambda a, *, k=1: None,
    lambda **kw: None,
    lambda a, **kw: None,
    lambda a, /: None,
    lambda a, /, b=2: None,
    lambda a, b, /: None,
    Shapes().method,
    Shapes().method_none,
    Shapes().method_two,
    Shapes.static,
    Shapes.klass,
    _decorated(lambda a, b: None),
    functools.partial(lambda a, b: None, 1),
]


@pytest.mark.parametrize("fn", SHAPES, ids=range(len(SHAPES)))
def test_fast_path_agrees_with_inspect(fn: Any) -> None:
    assert _takes_one_argument(fn) == _slow(fn)
    fast = _one_argument_from_code(fn)
    assert fast is None or fast == _slow(fn)
