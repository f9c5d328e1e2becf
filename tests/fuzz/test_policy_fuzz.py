"""The fuzzed policy corpus (issue 7): every file is accepted or rejected with a located PolicyError,
never another exception, within 2 s of CPU and bounded memory; a rejected file never becomes active.

The corpus (corpus.py) is generated from a fixed seed into a temporary directory, then
loaded file by file in a worker subprocess (load_worker.py) that reports each outcome,
its CPU and wall time and the worker's peak RSS. CPU time is the measure of the 2 s
bound because it is what a file costs, whatever else shares the machine; wall time only
serves to kill a hang.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addon.gateway import CorsGateway
from tests.fuzz.corpus import POLICIES, SEED, Item, build
from tests.property.common import bad_fields

WORKER = Path(__file__).with_name("load_worker.py")
MIN_FILES = 500
CPU_LIMIT = 2.0  # seconds of CPU per file: the bound
HANG_LIMIT = 30.0  # seconds of wall time without a result: the worker is killed and the file counts as hung
RSS_LIMIT_MIB = 512  # peak resident memory of the worker, over the whole corpus
ADDRESS_SPACE_MIB = 3072  # RLIMIT_AS of the worker: past it, allocation fails with MemoryError (a crash)
# Problems about the file as a whole (its size, the document not being a mapping, the count of further
# problems), which have no line or field to name.
WHOLE_FILE = ("file is larger than", "YAML policies are limited to", "more than", "must be a mapping", "... and ")

Result = dict[str, Any]


def run_worker(paths: list[str], log: Path) -> list[Result]:
    """Load every path in a worker; a file that hangs or kills the worker is recorded and the rest still load."""
    results: list[Result] = []
    pending = paths
    while pending:
        with open(log, "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), str(ADDRESS_SPACE_MIB)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(pending).encode())
        proc.stdin.close()
        done, buf, fd, hung = 0, b"", proc.stdout.fileno(), False
        while done < len(pending) and not hung:
            while b"\n" not in buf:  # raw reads: a buffered readline could hide a second line from select
                hung = not select.select([fd], [], [], HANG_LIMIT)[0]
                chunk = b"" if hung else os.read(fd, 1 << 16)
                if not chunk:
                    break
                buf += chunk
            if b"\n" not in buf:
                break
            line, buf = buf.split(b"\n", 1)
            results.append(json.loads(line))
            done += 1
        if done < len(pending):  # this file hung the worker, or killed it (a segfault, an abort)
            if hung:
                proc.kill()
            rc = proc.wait(10)
            outcome = "hung" if hung else f"worker died (rc {rc})"
            results.append({"path": pending[done], "outcome": outcome, "cpu": None, "wall": HANG_LIMIT, "rss_kib": 0})
        proc.wait(10)
        proc.stdout.close()
        pending = pending[done + 1:]
    return results


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Item]:
    return build(tmp_path_factory.mktemp("policy-corpus"), SEED)


@pytest.fixture(scope="module")
def results(corpus: list[Item], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    log = tmp_path_factory.mktemp("worker") / "stderr.log"
    out = {r["path"]: r for r in run_worker([str(item.path) for item in corpus], log)}
    _print_stats(corpus, out)
    return out


def _print_stats(corpus: list[Item], results: dict[str, Result]) -> None:
    """The closing note: outcomes per class, the slowest file, the peak memory."""
    per_kind: dict[str, Counter[str]] = {}
    for item in corpus:
        per_kind.setdefault(item.kind, Counter())[results[str(item.path)]["outcome"]] += 1
    slowest = max(results.values(), key=lambda r: r["cpu"] or 0.0)
    slowest_wall = max(results.values(), key=lambda r: r["wall"])
    peak = max(r["rss_kib"] for r in results.values())
    print(f"\npolicy corpus (seed {SEED}): {len(corpus)} files")
    for kind, counts in per_kind.items():
        print(f"  {kind:12} {sum(counts.values()):4}  " + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    total = Counter(r["outcome"] for r in results.values())
    print("  total        " + "  ".join(f"{k} {v}" for k, v in sorted(total.items())))
    print(f"  max CPU {slowest['cpu'] or 0.0:.3f} s ({Path(slowest['path']).name}), "
          f"max wall {slowest_wall['wall']:.3f} s ({Path(slowest_wall['path']).name}), "
          f"worker peak RSS {peak / 1024:.0f} MiB")


def test_the_corpus_is_big_and_covers_every_class(corpus: list[Item]) -> None:
    assert len(corpus) >= MIN_FILES
    kinds = Counter(item.kind for item in corpus)
    assert set(kinds) >= {"shipped", "truncated", "mutated", "wrong-type", "huge", "deep", "anchors", "bytes", "tags",
                          "json", "values"}


def test_the_corpus_is_deterministic(corpus: list[Item], tmp_path: Path) -> None:
    """Same seed, same bytes: a failure found in CI reproduces locally."""
    again = build(tmp_path, SEED)
    assert [i.path.name for i in again] == [i.path.name for i in corpus]
    assert all(a.path.read_bytes() == b.path.read_bytes() for a, b in zip(again, corpus))


def test_every_file_is_accepted_or_rejected_with_a_policy_error(results: dict[str, Result]) -> None:
    bad = {Path(p).name: r.get("error", r["outcome"]) for p, r in results.items()
           if r["outcome"] not in ("accepted", "rejected")}
    assert bad == {}


def test_every_rejection_names_the_file_and_a_place(results: dict[str, Result]) -> None:
    """A located error: the file, and a line or a field path for every problem not about the file as a whole."""
    unlocated = {}
    for path, r in results.items():
        if r["outcome"] != "rejected":
            continue
        assert r["file"] == path
        missing = [m for m in r["unlocated"] if not m.startswith(WHOLE_FILE)]
        if missing:
            unlocated[Path(path).name] = missing
    assert unlocated == {}


def test_an_accepted_policy_writes_only_valid_fields(results: dict[str, Result]) -> None:
    """The Server value and mock headers go on the wire as written: no CR, LF, NUL, or unencodable text."""
    bad = {Path(p).name: bad_fields([tuple(f) for f in r["fields"]])
           for p, r in results.items() if r["outcome"] == "accepted" and bad_fields([tuple(f) for f in r["fields"]])}
    assert bad == {}


def test_every_file_costs_at_most_2_s_of_cpu(results: dict[str, Result]) -> None:
    slow = {Path(p).name: round(r["cpu"], 2) for p, r in results.items() if (r["cpu"] or 0) > CPU_LIMIT}
    assert slow == {}


def test_memory_stays_bounded(results: dict[str, Result]) -> None:
    peak_mib = max(r["rss_kib"] for r in results.values()) / 1024
    assert peak_mib <= RSS_LIMIT_MIB


def test_the_undamaged_sources_are_accepted(results: dict[str, Result], corpus: list[Item]) -> None:
    """The control: the shipped policies, as YAML and as JSON, load."""
    shipped = [i for i in corpus if i.kind == "shipped"]
    assert len(shipped) == 2 * len(list(POLICIES.glob("*.yaml")))
    assert {results[str(i.path)]["outcome"] for i in shipped} == {"accepted"}


def test_a_rejected_file_never_becomes_active(corpus: list[Item], results: dict[str, Result], tmp_path: Path) -> None:
    """Swapped in under a running addon (cors.reload), a rejected file leaves the last good policy active."""
    rejected = [i for i in corpus if results[str(i.path)]["outcome"] == "rejected" and i.kind != "huge"]
    sample = rejected[::8]
    live = tmp_path / "live.yaml"
    good = (POLICIES / "strict-allowlist.yaml").read_bytes()
    live.write_bytes(good)
    addon = CorsGateway()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_policy=str(live))
        assert addon.engine is not None
        digest = addon.engine.loaded.digest
        for item in sample:
            live.write_bytes(item.path.read_bytes())
            with pytest.raises(exceptions.CommandError):
                addon.reload_policy()
            assert addon.engine.loaded.digest == digest, item.path.name
    assert len(sample) >= 40
