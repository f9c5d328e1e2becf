"""Which regular expressions can backtrack catastrophically, read with Python's own regex parser.

An `allow_origin_regex` runs on the event loop against an Origin any client chooses. A repeat nested
in another, with nothing to mark where one turn of the outer repeat ends, can match one text in
exponentially many ways: `(a+)+`, `(\\w+\\.?)*`, `(.*x){2,}`. On a long Origin that almost matches, `re`
tries them all, and the proxy stops for seconds or hours. `([a-z0-9-]+\\.)*` is safe: the inner part
cannot match the dot, so every turn ends at one.

This is a heuristic for nested quantifiers only (overlapping alternatives such as `(a|a)+` are not
looked for), and case-insensitive flags are ignored. `re._parser` is private, but it is the parser `re`
itself compiles with (Python 3.11+), so it reads every pattern exactly as `re` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from re import _constants as c
from re import _parser
from typing import Any

Item = tuple[Any, Any]  # (opcode, argument) as re._parser gives them

_WIDE = 128  # stands for every character beyond ASCII
_ALL = frozenset(range(_WIDE + 1))
_BACKTRACKING_REPEATS = (c.MAX_REPEAT, c.MIN_REPEAT)  # a possessive repeat never gives back what it took
_CATEGORIES = {
    category: frozenset(i for i in range(_WIDE) if re.fullmatch(escape, chr(i))) | {_WIDE}
    for category, escape in (
        (c.CATEGORY_DIGIT, r"\d"), (c.CATEGORY_NOT_DIGIT, r"\D"), (c.CATEGORY_SPACE, r"\s"),
        (c.CATEGORY_NOT_SPACE, r"\S"), (c.CATEGORY_WORD, r"\w"), (c.CATEGORY_NOT_WORD, r"\W"),
    )
}


def backtracks(pattern: str) -> bool:
    """Whether pattern has a repeat inside another that can split one text in many ways."""
    return _has_nested_ambiguity(_parser.parse(pattern))


def _has_nested_ambiguity(items: Iterable[Item]) -> bool:
    for op, av in items:
        if op in _BACKTRACKING_REPEATS:
            _, most, body = av
            if (most > 1 and _ambiguous(list(_flat(body)))) or _has_nested_ambiguity(body):
                return True
        elif op is c.SUBPATTERN and _has_nested_ambiguity(av[3]):
            return True
        elif op is c.BRANCH and any(_has_nested_ambiguity(alt) for alt in av[1]):
            return True
    return False  # atomic groups and possessive repeats never backtrack into what they matched


def _ambiguous(body: list[Item]) -> bool:
    """Whether one turn of a repeat over body can end in several places: body holds a repeat of
    variable count (`+`, `*`, `{1,9}`), and nothing else in body must match a character it cannot."""
    if len(body) == 1 and body[0][0] is c.BRANCH:
        return any(_ambiguous(list(_flat(alt))) for alt in body[0][1][1])
    for i, (op, av) in enumerate(body):
        if op in _BACKTRACKING_REPEATS and av[0] < av[1] and av[1] > 1:
            inner = _chars(av[2])
            others = body[:i] + body[i + 1:]
            if not any(_min_width(item) > 0 and not _chars([item]) & inner for item in others):
                return True
    return False


def _flat(items: Iterable[Item]) -> Iterable[Item]:
    """The items in sequence, groups opened (a group's parentheses do not change what it matches)."""
    for op, av in items:
        if op is c.SUBPATTERN:
            yield from _flat(av[3])
        else:
            yield op, av


def _chars(items: Iterable[Item]) -> frozenset[int]:
    """The characters (ASCII codes, _WIDE for all others) some match of items can contain."""
    out: set[int] = set()
    for op, av in items:
        if op is c.LITERAL:
            out.add(min(av, _WIDE))
        elif op is c.IN:
            out |= _set_chars(av)
        elif op in (*_BACKTRACKING_REPEATS, c.POSSESSIVE_REPEAT):
            out |= _chars(av[2])
        elif op is c.SUBPATTERN:
            out |= _chars(av[3])
        elif op is c.ATOMIC_GROUP:
            out |= _chars(av)
        elif op is c.BRANCH:
            for alt in av[1]:
                out |= _chars(alt)
        elif op not in (c.AT, c.ASSERT, c.ASSERT_NOT):  # those match no characters; anything else: any
            return _ALL
    return frozenset(out)


def _set_chars(items: Iterable[Item]) -> frozenset[int]:
    """The characters a [...] set matches."""
    out: set[int] = set()
    negated = False
    for op, av in items:
        if op is c.NEGATE:
            negated = True
        elif op is c.LITERAL:
            out.add(min(av, _WIDE))
        elif op is c.RANGE:
            out |= set(range(av[0], min(av[1], _WIDE - 1) + 1)) | ({_WIDE} if av[1] >= _WIDE else set())
        elif op is c.CATEGORY:
            out |= _CATEGORIES.get(av, _ALL)
        else:
            return _ALL
    return (_ALL - out) | {_WIDE} if negated else frozenset(out)


def _min_width(item: Item) -> int:
    """The fewest characters an item matches."""
    op, av = item
    if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
        return 1
    if op in (*_BACKTRACKING_REPEATS, c.POSSESSIVE_REPEAT):
        return av[0] * sum(map(_min_width, av[2]))
    if op is c.SUBPATTERN:
        return sum(map(_min_width, av[3]))
    if op is c.ATOMIC_GROUP:
        return sum(map(_min_width, av))
    if op is c.BRANCH:
        return min(sum(map(_min_width, alt)) for alt in av[1])
    return 0
