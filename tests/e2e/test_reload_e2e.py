"""Live policy swapping under a real mitmdump: every way a user swaps a file, and every way a file can be bad.

Each policy exposes its own marker header, so a response tells which policy
answered it. The watcher polls once a second (gateway.RELOAD_INTERVAL); waits
are bounded at WAIT seconds. `:set` rollback and the commands need a command
prompt, which mitmdump lacks: tests/unit/test_gateway_reload.py drives those.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.procs import Backend, Proxy, http

ORIGIN = "http://app.reload.test"
WAIT = 10.0  # seconds: ten watcher intervals
QUIET = 2.5  # seconds: more than two watcher intervals, to show a warning is not repeated


def policy(marker: str) -> str:
    """Allows ORIGIN and exposes `marker`; the marker is on line 3, inside a quoted string."""
    return (
        "version: 1\n"
        "plugins:\n"
        f'  web: {{type: cors, content: {{allow_origin: "{ORIGIN}", expose_headers: "{marker}"}}}}\n'
        "apis:\n"
        "  - {name: all, method: ANY, path: /, match_mode: SWA, plugins: [web]}\n"
    )


A, B = policy("A-Marker"), policy("B-Marker,X-Second")
BROKEN = {  # kind: (text, the located error the warning must carry)
    "syntax": ("version: 1\nplugins: {web: [\n", ":3: (top level): invalid YAML: "),
    "schema": (A.replace("content: {", "content: {max_age: soon, "), ":3: plugins.web.content.max_age: must be an "),
    "half-written": (B[: B.index("B-Marker") + 3], ":3: (top level): invalid YAML: "),
}


def digest(text: str) -> str:
    """DESIGN: the short content hash a user sees in the log (sha256 of the file's bytes, 12 hex digits)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.yaml"
    path.write_text(A)
    return path


@pytest.fixture
def proxy(live: Path, backend: Backend, launcher: tuple[str, ...] | None) -> Iterator[Proxy]:
    with Proxy(live, mode=f"reverse:{backend.url}", launcher=launcher) as p:
        yield p


def exposed(proxy: Proxy, path: str = "/x") -> str | None:
    """Which policy answers now: its Access-Control-Expose-Headers value."""
    status, headers, _ = http("GET", f"{proxy.url}{path}", {"Origin": ORIGIN})
    assert status == 200
    found = [v for k, v in headers if k.lower() == "access-control-expose-headers"]
    assert len(found) <= 1, headers
    return found[0] if found else None


def wait_log(proxy: Proxy, text: str, after: int) -> str:
    """The log from offset `after` once it contains text; fails with the log after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while text not in (log := proxy.log()[after:]):
        assert time.monotonic() < deadline, f"{text!r} not logged within {WAIT} s:\n{log}"
        time.sleep(0.05)
    return log


def swap_line(old: Path, old_text: str, new: Path, new_text: str) -> str:
    return f"corsgate policy swapped: {old} ({digest(old_text)}) -> {new} ({digest(new_text)}), apis=1\n"


def replace_atomically(live: Path, text: str) -> None:
    tmp = live.with_name(live.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, live)


# -- the ways to swap ------------------------------------------------------------------------------

def test_edit_in_place(proxy: Proxy, live: Path) -> None:
    assert exposed(proxy) == "A-Marker"
    mark = len(proxy.log())
    live.write_text(B)
    wait_log(proxy, swap_line(live, A, live, B), mark)
    assert exposed(proxy) == "B-Marker,X-Second"


def test_atomic_rename(proxy: Proxy, live: Path) -> None:
    mark = len(proxy.log())
    replace_atomically(live, B)
    wait_log(proxy, swap_line(live, A, live, B), mark)
    assert exposed(proxy) == "B-Marker,X-Second"


def test_symlink_switch_to_an_older_file(tmp_path: Path, backend: Backend, launcher: tuple[str, ...] | None) -> None:
    newer, older = tmp_path / "a.yaml", tmp_path / "b.yaml"
    newer.write_text(A)
    older.write_text(B)
    os.utime(older, (time.time() - 86400, time.time() - 86400))  # a day older than the active file
    live = tmp_path / "live.yaml"
    live.symlink_to(newer)
    with Proxy(live, mode=f"reverse:{backend.url}", launcher=launcher) as proxy:
        assert exposed(proxy) == "A-Marker"
        mark = len(proxy.log())
        (tmp_path / "switch").symlink_to(older)
        os.replace(tmp_path / "switch", live)  # the atomic way to repoint a symlink
        wait_log(proxy, swap_line(live, A, live, B), mark)
        assert exposed(proxy) == "B-Marker,X-Second"


# -- bad files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", BROKEN)
def test_broken_file_keeps_last_good_warns_once_and_is_retried(proxy: Proxy, live: Path, kind: str) -> None:
    text, located = BROKEN[kind]
    mark = len(proxy.log())
    with open(live, "w") as f:  # kept open: the half-written case is caught mid-copy
        f.write(text)
        f.flush()
        log = wait_log(proxy, f"{live}{located}", mark)
        assert f"corsgate: policy not swapped, keeping the last good one ({digest(A)}):\n{live}{located}" in log
        assert exposed(proxy) == "A-Marker"
        time.sleep(QUIET)
        assert proxy.log()[mark:].count("policy not swapped") == 1
        if kind == "half-written":
            f.write(B[len(text):])  # the copy completes: the file changed again
    if kind != "half-written":
        live.write_text(B)
    wait_log(proxy, swap_line(live, A, live, B), mark)
    assert exposed(proxy) == "B-Marker,X-Second"


def test_deleted_file_keeps_last_good_and_says_so(proxy: Proxy, live: Path) -> None:
    mark = len(proxy.log())
    live.unlink()
    wait_log(proxy, f"corsgate: cannot read {live}; keeping the last good policy ({digest(A)})\n", mark)
    assert exposed(proxy) == "A-Marker"
    time.sleep(QUIET)
    assert proxy.log()[mark:].count("cannot read") == 1
    replace_atomically(live, B)
    wait_log(proxy, swap_line(live, A, live, B), mark)
    assert exposed(proxy) == "B-Marker,X-Second"


# -- one policy per flow ---------------------------------------------------------------------------

def test_flow_in_flight_keeps_the_policy_it_started_with(proxy: Proxy, live: Path, backend: Backend) -> None:
    backend.clear()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(exposed, proxy, "/slow?delay=5000")
        deadline = time.monotonic() + WAIT
        while not any(h["path"].startswith("/slow") for h in backend.hits()):
            assert time.monotonic() < deadline, "the slow request never reached the backend"
            time.sleep(0.05)
        mark = len(proxy.log())
        replace_atomically(live, B)
        wait_log(proxy, swap_line(live, A, live, B), mark)
        assert exposed(proxy) == "B-Marker,X-Second"  # new flows get the new policy ...
        assert not slow.done()
        assert slow.result(timeout=WAIT) == "A-Marker"  # ... the one in flight keeps the old one


def test_every_swap_logs_one_line_with_api_count_and_digest(proxy: Proxy, live: Path) -> None:
    mark = len(proxy.log())
    live.write_text(B)
    wait_log(proxy, swap_line(live, A, live, B), mark)
    three = B + "  - {name: one, method: GET, path: /one}\n  - {name: two, method: GET, path: /two}\n"
    replace_atomically(live, three)
    log = wait_log(proxy, f"-> {live} ({digest(three)}), apis=3\n", mark)
    assert re.findall(r"corsgate policy swapped: .*\n", log) == [
        swap_line(live, A, live, B),
        f"corsgate policy swapped: {live} ({digest(B)}) -> {live} ({digest(three)}), apis=3\n",
    ]
