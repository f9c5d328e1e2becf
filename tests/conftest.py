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


# The command prefix that starts the gateway: None is `mitmdump -s addon/cors_gateway.py` (procs.MITMDUMP),
# the other the lean launcher (issue 8); Proxy and run_to_exit take it as `launcher=`.
LAUNCHERS: dict[str, tuple[str, ...] | None] = {
    "mitmdump": None,
    "lean": (sys.executable, str(ROOT / "scripts" / "corsgate"), "serve"),
}


@pytest.fixture(scope="session", params=list(LAUNCHERS))
def launcher(request: pytest.FixtureRequest) -> tuple[str, ...] | None:
    """Every suite that asks for it runs once per launcher; session scope runs all of mitmdump's first."""
    return LAUNCHERS[request.param]
