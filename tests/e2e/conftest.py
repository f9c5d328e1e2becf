"""Fixtures shared by the end-to-end suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.procs import Backend


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    """A real CORS-less backend on 127.0.0.1, one per test module."""
    with Backend() as b:
        yield b
