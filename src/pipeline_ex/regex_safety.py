"""Refusing regular expressions that can backtrack exponentially (ReDoS), before they run.

A schema extension's ``pattern`` runs on every workflow validated, through Python's
backtracking ``re``: ``^(a|aa)+$`` takes 20 s on a 40-character name.  Such patterns are
refused when the extension is registered, by looking at the parsed pattern (``re._parser``,
the parser ``re`` itself uses), so the check costs nothing at validation time and does not
depend on the validator that later runs the pattern.

Exponential backtracking needs a repeated group whose body can split the same text in more
than one way.  Inside every repeat that may run many times (unbounded, or more than
``MANY`` times) this module refuses:

- a variable-width piece (``a+``, ``\\s?``, ``(|a)``) whose characters can also start what
  follows it, the next repetition included: ``(a+)+``, ``(\\w+\\s?)*``, ``(a|aa)+``;
- alternatives that can start with the same character: ``(ab|[a-z]b)+``.

Patterns such as ``^[a-z0-9]+(-[a-z0-9]+)*$`` (a separator that the repeated part cannot
match) pass.  The analysis is conservative on the refused side; polynomial backtracking
(``\\d*\\d*\\d*x``) is bounded by the pattern's length and not refused.
"""

from __future__ import annotations

import re
import re._constants as sre  # type: ignore[import-not-found]  # re's own parser, no stubs
import re._parser as sre_parse  # type: ignore[import-not-found]
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

#: A repeat that may run more than this many times is analysed; small bounded repeats
#: can only multiply the work by a bounded factor.
MANY = 16

_CATEGORIES = {
    sre.CATEGORY_DIGIT: re.compile(r"\d"),
    sre.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    sre.CATEGORY_SPACE: re.compile(r"\s"),
    sre.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    sre.CATEGORY_WORD: re.compile(r"\w"),
    sre.CATEGORY_NOT_WORD: re.compile(r"\W"),
}
#: Characters tried when asking whether two character sets overlap (plus every literal
#: and range bound the sets mention).
_SAMPLE = [chr(c) for c in range(0x250)] + ["\u2028", "\u3000", "\u4e00", "\U0001f600"]
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)

Item = tuple[Any, Any]
Atoms = list[Item]


class UnsafePattern(ValueError):
    """The pattern can backtrack exponentially; the message says which part and why."""


def _atom_matches(op: Any, av: Any, char: str) -> bool:
    code = ord(char)
    if op is sre.LITERAL:
        return bool(code == av)
    if op is sre.NOT_LITERAL:
        return bool(code != av)
    if op is sre.ANY:
        return True
    if op is sre.RANGE:
        return bool(av[0] <= code <= av[1])
    if op is sre.CATEGORY:
        pattern = _CATEGORIES.get(av)
        return pattern is None or pattern.fullmatch(char) is not None
    if op is sre.IN:
        negate = bool(av) and av[0][0] is sre.NEGATE
        inside = any(_atom_matches(o, a, char) for o, a in (av[1:] if negate else av))
        return inside != negate
    return True  # a group reference or anything unknown: may be any character


def _bounds(atoms: Atoms) -> Iterable[str]:
    for op, av in atoms:
        if op in (sre.LITERAL, sre.NOT_LITERAL):
            yield chr(av)
        elif op is sre.RANGE:
            yield from (chr(av[0]), chr(av[1]))
        elif op is sre.IN:
            yield from _bounds([a for a in av if a[0] is not sre.NEGATE])


def _overlap(left: Atoms, right: Atoms) -> bool:
    if not left or not right:
        return False
    for char in [*_SAMPLE, *_bounds(left), *_bounds(right)]:
        if any(_atom_matches(o, a, char) for o, a in left) and any(
            _atom_matches(o, a, char) for o, a in right
        ):
            return True
    return False


def _first(items: Sequence[Item]) -> tuple[Atoms, bool]:
    """The characters a sequence can start with, and whether it can match empty text."""
    atoms: Atoms = []
    for op, av in items:
        first, nullable = _first_of_item(op, av)
        atoms.extend(first)
        if not nullable:
            return atoms, False
    return atoms, True


def _first_of_item(op: Any, av: Any) -> tuple[Atoms, bool]:
    if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN, sre.CATEGORY):
        return [(op, av)], False
    if op in (*_REPEATS, sre.POSSESSIVE_REPEAT):
        first, nullable = _first(av[2].data)
        return first, nullable or av[0] == 0
    if op is sre.SUBPATTERN:
        return _first(av[3].data)
    if op is sre.ATOMIC_GROUP:
        return _first(av.data)
    if op is sre.BRANCH:
        atoms: Atoms = []
        nullable = False
        for alternative in av[1]:
            first, empty = _first(alternative.data)
            atoms.extend(first)
            nullable = nullable or empty
        return atoms, nullable
    if op is sre.GROUPREF_EXISTS:
        yes, _ = _first(av[1].data)
        no, _ = _first(av[2].data) if av[2] is not None else ([], True)
        return yes + no, True
    if op is sre.GROUPREF:
        return [(sre.ANY, None)], True
    return [], True  # anchors and lookarounds consume nothing


def _scan(items: Sequence[Item], follow: Atoms) -> None:
    """Check one sequence inside a many-times repeat for a choice that the next character
    cannot settle; ``follow`` is what may come after the sequence (inside the repeat's
    body, or the start of the next repetition)."""
    for index, (op, av) in enumerate(items):
        rest, rest_nullable = _first(items[index + 1 :])
        after = rest + (follow if rest_nullable else [])
        if op in _REPEATS:
            low, high, body = av
            again, empty = _first(body.data)
            # A variable repeat chooses between one more time and stopping.
            if low != high and (empty or _overlap(again, after)):
                raise UnsafePattern(
                    "a variable-length repeat inside a repeated group can also match what "
                    "follows it (the next repetition included), so the same text splits in "
                    "many ways"
                )
            _scan(body.data, after + (again if high > 1 else []))
        elif op is sre.SUBPATTERN:
            _scan(av[3].data, after)
        elif op is sre.BRANCH:
            choices = []
            for alternative in av[1]:
                first, empty = _first(alternative.data)
                choices.append((first + (after if empty else []), empty))
            for i, (one, one_empty) in enumerate(choices):
                for other, other_empty in choices[i + 1 :]:
                    if (one_empty and other_empty) or _overlap(one, other):
                        raise UnsafePattern(
                            "two alternatives inside a repeated group can match the same "
                            "text, so the same text splits in many ways"
                        )
            for alternative in av[1]:
                _scan(alternative.data, after)
        # atomic groups and possessive repeats are never backtracked into; nothing else
        # offers a choice


def _walk(items: Sequence[Item]) -> None:
    """Find every many-times repeat and check its body."""
    for op, av in items:
        if op in _REPEATS:
            _, high, body = av
            if high == sre.MAXREPEAT or high > MANY:
                _scan(body.data, _first(body.data)[0])
            _walk(body.data)
        elif op is sre.POSSESSIVE_REPEAT:
            _walk(av[2].data)
        elif op is sre.SUBPATTERN:
            _walk(av[3].data)
        elif op is sre.ATOMIC_GROUP:
            _walk(av.data)
        elif op is sre.BRANCH:
            for alternative in av[1]:
                _walk(alternative.data)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            _walk(av[1].data)
        elif op is sre.GROUPREF_EXISTS:
            _walk(av[1].data)
            if av[2] is not None:
                _walk(av[2].data)


@lru_cache(maxsize=512)
def unsafe_reason(pattern: str) -> str | None:
    """Why ``pattern`` is refused (it does not compile, or can backtrack exponentially),
    or ``None`` when it is fine."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    except RecursionError:
        return "nested too deeply to analyse"
    try:
        _walk(parsed.data)
    except UnsafePattern as exc:
        return f"can backtrack exponentially: {exc}"
    except RecursionError:
        return "nested too deeply to analyse"
    return None
