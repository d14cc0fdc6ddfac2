"""regex_safety: patterns that can backtrack exponentially are recognised before they run."""

from __future__ import annotations

import pytest

from pipeline_ex.regex_safety import unsafe_reason

EXPONENTIAL = [
    r"^(a|aa)+$",  # issue 7 item 13: 20 s on a 40-character name
    r"^(a+)+$",
    r"^(a*)*$",
    r"^(a?)*$",
    r"(\w+\s?)*$",
    r"^(a|a)*$",
    r"(ab|[a-z]b)+",
    r"(a+|b)+",
    r"(a|b|ab)*c",
    r"(x+x+)+y",
    r"(.*a){20}",
    r"^((-[a-z]+)*)+$",
    r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3}))$",
]

ORDINARY = [
    r"^[a-z0-9]+(-[a-z0-9]+)*$",
    r"^[a-z_][a-z0-9_]*$",
    r"^\d{4}-\d{2}-\d{2}$",
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$",
    r"^[^@\s]+@[^@\s]+\.[a-z]+$",
    r"^https?://",
    r"^(foo|bar)+$",
    r"^([0-9]{1,3}\.){3}[0-9]{1,3}$",
    r"^(\w+\.)*\w+$",
    r"^[A-Z][A-Za-z]*(\s[A-Z][A-Za-z]*)*$",
    r"^(claude|gemini)$",
    r"^(?:[a-z]+_)*[a-z]+$",
    r"^.*$",
    r"^(a|b)*$",
    r"^v?\d+(\.\d+)*$",
    r"^(?>a+)+$",  # atomic: never backtracked into
    r"^(a++)+$",  # possessive
    r"^(a{1,3}){2}$",  # bounded repeats multiply the work by a bounded factor only
]


@pytest.mark.parametrize("pattern", EXPONENTIAL)
def test_exponential_patterns_are_refused(pattern: str) -> None:
    reason = unsafe_reason(pattern)
    assert reason is not None and "backtrack exponentially" in reason


@pytest.mark.parametrize("pattern", ORDINARY)
def test_ordinary_patterns_pass(pattern: str) -> None:
    assert unsafe_reason(pattern) is None


def test_a_pattern_that_does_not_compile_says_so() -> None:
    reason = unsafe_reason("(unclosed")
    assert reason is not None and "not a valid regular expression" in reason


def test_deep_nesting_is_refused_not_a_crash() -> None:
    reason = unsafe_reason("(" * 2000 + "a" + ")" * 2000)
    assert reason is None or "nested too deeply" in reason or "not a valid" in reason
