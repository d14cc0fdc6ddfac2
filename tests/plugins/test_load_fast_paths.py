"""The shortcuts on the plugin-loading path give the answers of the general paths."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.components import plain_json
from pipeline_ex.plugins.dependencies import Candidate, plan
from pipeline_ex.plugins.metadata import parse_dependency


class _Frozen(Mapping[Any, Any]):
    """A mapping that is not a dict: ``plain_json`` takes the general walk for it."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self._data = data

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # nan and infinities included: both paths must refuse them alike
    st.text(max_size=5),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=2), st.tuples(st.integers()))
_keys = st.one_of(st.text(max_size=5), st.integers(), st.none())


def _outcome(value: Any) -> Any:
    try:
        return ("ok", plain_json(value, plugin="p", where="get_metadata's answer"))
    except PluginError as exc:
        return ("refused", exc.code, exc.message)


@given(st.dictionaries(_keys, _values, max_size=6))
def test_a_flat_dict_is_copied_or_refused_as_the_general_walk_would(data: dict[Any, Any]) -> None:
    fast, general = _outcome(data), _outcome(_Frozen(data))
    if fast[0] == "ok" and general[0] == "ok":
        # NaN never equals itself: compare the JSON text instead
        assert repr(fast[1]) == repr(general[1])
    else:
        assert fast == general


def test_a_flat_copy_is_a_new_dict_and_refusals_name_the_key() -> None:
    answer = {"name": "x", "version": "1.0", "api_version": 1, "ratio": 0.5}
    copy = plain_json(answer, plugin="p", where="w")
    assert copy == answer and copy is not answer
    with pytest.raises(PluginError, match="non-finite number at /ratio"):
        plain_json({"ratio": math.inf}, plugin="p", where="w")
    with pytest.raises(PluginError, match="non-string key 1"):
        plain_json({1: "x"}, plugin="p", where="w")


@given(
    st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8),
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.sampled_from("abcdefghz")), max_size=6),
)
def test_the_plan_of_a_batch_is_the_given_order_when_nobody_depends_on_anybody(
    names: list[str], edges: list[tuple[str, str]]
) -> None:
    deps: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        if a in deps and a != b:
            deps[a].append(b)
    candidates = [
        Candidate(n, "1.0", tuple(parse_dependency(d, plugin=n) for d in dict.fromkeys(deps[n])))
        for n in names
    ]
    result = plan(candidates, {"z": "1.0"})  # "z" is loaded already: no edge in the batch
    for name in result.order:  # every dependency inside the batch comes first
        for dep in deps[name]:
            if dep in deps:
                assert result.order.index(dep) < result.order.index(name)
    assert set(result.order) | set(result.failures) == set(names)
    if not any(d in deps for n in names for d in deps[n]):
        assert result.order == [n for n in names if n not in result.failures]


@given(
    positional=st.integers(0, 3),
    defaults=st.integers(0, 3),
    star_args=st.booleans(),
    keyword_only=st.integers(0, 2),
    keyword_defaults=st.integers(0, 2),
    star_kwargs=st.booleans(),
    as_method=st.booleans(),
)
def test_the_arity_shortcut_answers_as_inspect_does(
    positional: int,
    defaults: int,
    star_args: bool,
    keyword_only: int,
    keyword_defaults: int,
    star_kwargs: bool,
    as_method: bool,
) -> None:
    """``_one_argument_from_code`` (the code-object shortcut) against ``inspect.signature``
    binding one positional argument, over generated signatures, plain and bound."""
    import inspect

    from pipeline_ex.plugins.adapter import _one_argument_from_code

    names = [f"p{i}" for i in range(positional + (1 if as_method else 0))]
    given_defaults = min(defaults, positional)
    params = [
        f"{name}=0" if index >= len(names) - given_defaults else name
        for index, name in enumerate(names)
    ]
    if star_args:
        params.append("*args")
    elif keyword_only:
        params.append("*")
    given_kw_defaults = min(keyword_defaults, keyword_only)
    params += [
        f"k{i}=0" if i >= keyword_only - given_kw_defaults else f"k{i}" for i in range(keyword_only)
    ]
    if star_kwargs:
        params.append("**kwargs")
    namespace: dict[str, Any] = {}
    exec(f"def fn({', '.join(params)}):\n    return None\n", namespace)
    fn = namespace["fn"]
    target = fn.__get__(object()) if as_method else fn
    try:
        inspect.signature(target).bind(object())
        expected = True
    except TypeError:
        expected = False
    assert _one_argument_from_code(target) is expected
