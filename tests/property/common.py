"""Shared pieces of the property suites: reproducible hypothesis settings and the HTTP field grammar."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, settings

# RFC 9110 §5.1 / §5.5: field-name = token; field-value = *field-content, where field-content is
# field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ] and field-vchar = VCHAR / obs-text.
# Written here from the RFC rather than imported from addon.core.fields, so the core is not its own judge.
TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE_RE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[\x20\x09\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")


def fixed(examples: int) -> settings:
    """Settings for CI: a stated number of examples, derandomized (same examples on every run), no deadline.

    The example database stays off so a run never depends on what an earlier run found.
    """
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def bad_fields(headers: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """The (name, value) pairs that break the field grammar: a non-token name, or CR/LF/NUL/CTL/padding in a value."""
    return [
        (name, value) for name, value in headers
        if not TOKEN_RE.fullmatch(name) or not FIELD_VALUE_RE.fullmatch(value)
    ]
