"""A plugin's ``version`` is checked without importing packaging when it is a plain release
number; the verdict must be packaging's either way."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from packaging.version import InvalidVersion, Version

from pipeline_ex.plugins.metadata import _is_version


def _packaging_says(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


RELEASE_LIKE = st.lists(
    st.text(alphabet="0123456789٣.+-abrcv ", min_size=0, max_size=4), min_size=1, max_size=4
).map(".".join)


@given(st.one_of(RELEASE_LIKE, st.text(max_size=12)))
def test_same_verdict_as_packaging(text: str) -> None:
    assert _is_version(text) == _packaging_says(text)


def test_examples() -> None:
    assert _is_version("1") and _is_version("1.0.0") and _is_version("01.2")
    assert _is_version("1.0rc1") and _is_version(" 1.0 ")  # packaging's answer
    assert not _is_version("1.") and not _is_version("one") and not _is_version("1..0")
