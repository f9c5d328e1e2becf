"""Load policy files one by one, as the gateway does, and report each outcome with its cost.

Run by tests/fuzz/test_policy_fuzz.py in a subprocess (so a hang can be killed and
memory measured without the test runner's own): file paths come as a JSON list on
stdin, one JSON line per file goes to stdout, in order. RLIMIT_AS bounds the
address space, so a memory bomb ends as MemoryError instead of taking the machine.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from addon.core.cors import Engine  # noqa: E402 - after the sys.path line, as in addon/cors_gateway.py
from addon.core.policy import PolicyError, load_policy  # noqa: E402


def load_one(path: str) -> dict[str, object]:
    """Load and compile one file; never raises (a crash is what the caller looks for)."""
    cpu, wall = time.process_time(), time.perf_counter()
    out: dict[str, object] = {"path": path}
    try:
        policy = Engine(load_policy(path)).policy
        out["outcome"] = "accepted"
        # Header fields the policy makes the gateway write, verbatim (the test checks their grammar).
        server = [("Server", policy.gateway.server)] if policy.gateway.server else []
        out["fields"] = server + [pair for api in policy.apis for pair in api.backend.headers.items()][:50]
    except PolicyError as e:
        out["outcome"] = "rejected"
        out["file"] = e.file
        out["problems"] = [[p.line, p.field[:200], p.message[:300]] for p in e.problems[:5]]
        out["problem_count"] = len(e.problems)
        out["unlocated"] = [p.message[:300] for p in e.problems if p.line is None and not p.field][:5]
    except BaseException as e:  # noqa: BLE001 - MemoryError, RecursionError, OverflowError: what the corpus hunts
        out["outcome"] = "crashed"
        out["error"] = f"{type(e).__name__}: {e}"[:500]
    out["cpu"] = time.process_time() - cpu
    out["wall"] = time.perf_counter() - wall
    out["rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def main() -> None:
    limit = int(sys.argv[1]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for path in json.load(sys.stdin):
        print(json.dumps(load_one(path)), flush=True)


if __name__ == "__main__":
    main()
