"""Shared pytest setup: the repository root on sys.path, so tests import `addon.*` as the entry does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.hookimpl(trylast=True)  # after tests/browser/conftest.py has marked its items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread for the
    rest of the session, and the addon tests drive their async hooks with asyncio.run()."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
