"""Header text as the engines hold it: bytes decoded one byte per character (latin-1), as gateway.py
hands them over; characters above U+00FF are taken as UTF-8. Shared by the rules and the wordings."""

from __future__ import annotations


def header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
