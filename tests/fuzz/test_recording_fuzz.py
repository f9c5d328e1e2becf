"""Broken recordings (issue 17, item 4): truncated and corrupted flow files and HARs, HARs with missing or
mistyped fields, huge headers, non-UTF-8. Reading and learning either work (broken entries counted) or stop
with a RecordingError/LearnError that names the file; nothing else is ever raised, and the CLIs exit 1 with
one message and no traceback. Hypothesis runs derandomized: the same inputs on every run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.tools.learn import LearnError, learn, render
from addon.tools.recordings import Recording, RecordingError, read
from tests.property.common import fixed
from tests.unit.test_learn import API, APP, har_entry, session, write_har

REPO = Path(__file__).resolve().parents[2]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def outcome(path: Path) -> str:
    """Read and learn one file as cors-learn does; 'ok', 'broken: N', or the error's first words. Any other
    exception fails the test."""
    recording = Recording()
    try:
        learned = learn(read([path], recording), recording)
        render(learned, path.with_suffix(".yaml"))
    except RecordingError as e:
        assert str(e).startswith(str(path)), e
        return "recording error"
    except LearnError:
        return "nothing to learn"
    return f"ok, {recording.skipped.get('broken entry', 0)} broken"


@pytest.fixture(scope="module")
def flows_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return session(tmp_path_factory.mktemp("fuzz")).read_bytes()


def good_har() -> dict[str, Any]:
    return {"log": {"version": "1.2", "pages": [{"id": "p", "title": f"{APP}/"}], "entries": [
        har_entry("OPTIONS", f"{API}/a", {"Origin": APP, "Access-Control-Request-Method": "PUT",
                                          "Access-Control-Request-Headers": "x-a"},
                  204, {"Access-Control-Allow-Origin": APP}),
        har_entry("PUT", f"{API}/a", {"Origin": APP, "X-A": "1", "Cookie": "s=1"}, 200, {"X-Out": "1"}),
        har_entry("GET", f"{API}/b/1", {"Referer": f"{APP}/"}, -1, pageref="p"),
    ]}}


@fixed(120)
@given(cut=st.integers(min_value=0, max_value=10**6))
def test_truncated_flow_files(flows_bytes: bytes, tmp_path_factory: pytest.TempPathFactory, cut: int) -> None:
    path = tmp_path_factory.mktemp("cut") / "cut.flows"
    path.write_bytes(flows_bytes[: cut % (len(flows_bytes) + 1)])
    outcome(path)


@fixed(150)
@given(changes=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_flow_files(flows_bytes: bytes, tmp_path_factory: pytest.TempPathFactory,
                              changes: list[tuple[int, int]]) -> None:
    data = bytearray(flows_bytes)
    for position, value in changes:
        data[position % len(data)] = value
    path = tmp_path_factory.mktemp("bytes") / "corrupt.flows"
    path.write_bytes(bytes(data))
    outcome(path)


@fixed(150)
@given(data=st.data())
def test_hars_with_missing_and_mistyped_fields(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    document = good_har()
    for _ in range(data.draw(st.integers(1, 4))):
        node: Any = document
        # walk down to a random mapping or list, then drop or replace one of its members
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = data.draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
                node = child
                continue
            if data.draw(st.booleans()):
                del node[key]
            else:
                node[key] = data.draw(JSON_VALUES)
            break
    path = tmp_path_factory.mktemp("har") / "fields.har"
    path.write_text(json.dumps(document))
    outcome(path)


@fixed(100)
@given(cut=st.integers(min_value=1, max_value=10**5), junk=st.binary(max_size=3), invalid=st.booleans())
def test_truncated_and_non_utf8_hars(tmp_path_factory: pytest.TempPathFactory, cut: int, junk: bytes,
                                     invalid: bool) -> None:
    """Cut short, or with a byte that is never UTF-8 (0xff) put in: a located error, always."""
    text = json.dumps(good_har()).encode()
    at = 1 + cut % (len(text) - 1)
    path = tmp_path_factory.mktemp("har") / "cut.har"
    path.write_bytes(text[:at] + b"\xff" + junk + text[at:] if invalid else text[:at])
    assert outcome(path) == "recording error"


def test_huge_headers_are_read_and_never_learned_as_names(tmp_path: Path) -> None:
    huge = "v" * 1_000_000
    entries = [har_entry("PUT", f"{API}/a", {"Origin": APP, "X-Huge": huge, "bad name": "1", "X-" + "n" * 5000: "1"},
                         200, {"X-Big": huge, "not a token": "1"})]
    result = outcome(write_har(tmp_path / "huge.har", entries))
    assert result == "ok, 0 broken"
    recording = Recording()
    text = render(learn(read([tmp_path / "huge.har"], recording), recording), tmp_path / "huge.yaml")
    assert "X-Huge" in text and "X-Big" in text and huge not in text
    assert "bad name" not in text.lower() and "not a token" not in text.lower()


@pytest.mark.parametrize("make", [
    lambda good: good[: len(good) // 3],  # truncated flow file
    lambda good: b"\x89PNG\r\n\x1a\n" + good,  # not a recording at all
    lambda good: b'{"log": {"entries": [' + b"\xc3\x28" + b"]}}",  # non-UTF-8 HAR
    lambda good: b'{"log": {"entries": [{"request": ' * 3000,  # deep, truncated HAR
    lambda good: b'{"log": {"entries": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}}",  # nesting bomb
])
def test_cli_says_one_thing_and_exits_1(flows_bytes: bytes, tmp_path: Path, make: Any) -> None:
    path = tmp_path / "input"
    path.write_bytes(make(flows_bytes))
    for tool, args in (("cors-learn", ["-o", str(tmp_path / "out.yaml")]), ("cors-check", [])):
        inputs = [str(path)] if tool == "cors-learn" else ["--flows", str(path)]
        proc = subprocess.run([sys.executable, str(REPO / "scripts" / tool), *inputs, *args],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, (tool, proc.stdout[-2000:], proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr and proc.stderr.startswith(f"{tool}: {path}"), proc.stderr[-2000:]
        assert len(proc.stderr.splitlines()) == 1, proc.stderr[-2000:]
    assert not (tmp_path / "out.yaml").exists()
