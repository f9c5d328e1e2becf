"""HTTP field-list helpers shared by the engine (cors.py) and the judge (verdict.py).

Only syntax lives here: splitting comma lists and checking tokens. Anything that
decides what a browser accepts belongs to verdict.py, anything that decides what
the gateway answers belongs to cors.py.
"""

from __future__ import annotations

from collections.abc import Iterable

# RFC 9110 tchar: the characters a method or a field name may consist of.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def is_token(value: str) -> bool:
    """True if value is a non-empty RFC 9110 token (a valid method or field name)."""
    return bool(value) and _TCHAR.issuperset(value)


def split_list(values: str | Iterable[str] | None) -> list[str]:
    """Split one or several comma-separated field values into trimmed, non-empty items.

    Order is kept and duplicates are kept; callers decide whether they matter.
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = (values,)
    return [item.strip(" \t") for value in values for item in value.split(",") if item.strip(" \t")]


def lower_set(values: str | Iterable[str] | None) -> frozenset[str]:
    """Split a field list and lower-case it, for case-insensitive name comparisons."""
    return frozenset(item.lower() for item in split_list(values))
