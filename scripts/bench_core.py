#!/usr/bin/env python3
"""Pure-core micro-benchmark for scripts/bench: policy load + compile, and µs per routing + CORS decision.

Runs in the interpreter being benchmarked (no mitmproxy involved) on the policies
scripts/bench generated into --dir, and prints one JSON line. A "decision" is
what the addon does per actual request: `Engine.decide` on the request facts
plus `response_edit` on the upstream's headers, for the GET the throughput
benchmark sends (it hits an API in the middle of the policy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import genpolicy  # noqa: E402  (scripts/ is sys.path[0] when run as a script)
from ruamel.yaml import YAML  # noqa: E402  (the library policy.py parses YAML with)

from addon.core.cors import Engine, RequestFacts, response_edit  # noqa: E402
from addon.core.policy import load_policy  # noqa: E402

API_COUNTS = (10, 1000, 10000)
UPSTREAM_HEADERS = (("Server", "nginx"), ("Content-Type", "application/json"), ("Content-Length", "26"))


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    """Best of `repeat` timeit rounds, in µs per call: the least-disturbed figure on a shared host."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat, number)) / number * 1e6


def load_and_compile(path: Path) -> tuple[list[float], list[float], Engine]:
    """Seconds to load (read, parse, validate) and to compile a policy file, a few times."""
    load_times: list[float] = []
    compile_times: list[float] = []
    while len(load_times) < 3 and sum(load_times) + sum(compile_times) < 5:
        t0 = time.perf_counter()
        loaded = load_policy(path)
        t1 = time.perf_counter()
        engine = Engine(loaded)
        load_times.append(t1 - t0)
        compile_times.append(time.perf_counter() - t1)
    return load_times, compile_times, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="where apis-N.json are")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    out: dict[str, Any] = {
        "what": "µs per decision = `Engine.decide(RequestFacts)` + `response_edit(plan, upstream headers)` for "
                "GET with an allowed Origin to an API in the middle of the policy (best of "
                f"{repeat} timeit rounds); load + compile = `load_policy(path)` + `Engine(policy)` "
                "(median of up to 3 within 5 s).",
        "decision_us": {}, "route_us": {}, "preflight_us": {}, "load_s": {}, "compile_s": {}, "load_compile_s": {},
    }
    for n in API_COUNTS:
        load_times, compile_times, engine = load_and_compile(args.dir / f"apis-{n}.json")
        target = genpolicy.bench_target(n)
        get = RequestFacts("GET", target.host, target.path, origin=genpolicy.ORIGIN)
        preflight = RequestFacts("OPTIONS", target.host, target.path, origin=genpolicy.ORIGIN, request_method="PUT",
                                 request_headers=("content-type", "x-requested-with"))
        decision = engine.decide(get)
        if decision.api is None or decision.api.name != target.api_name or decision.cors is None:
            sys.exit(f"bench_core: GET {target.host}{target.path} did not hit {target.api_name}: {decision}")

        def one_get(engine: Engine = engine, get: RequestFacts = get) -> None:
            response_edit(engine.decide(get).cors, UPSTREAM_HEADERS)

        out["decision_us"][str(n)] = per_call_us(one_get, repeat)
        out["route_us"][str(n)] = per_call_us(partial(engine.route, get, "GET"), repeat)
        out["preflight_us"][str(n)] = per_call_us(partial(engine.decide, preflight), repeat)
        out["load_s"][str(n)] = statistics.median(load_times)
        out["compile_s"][str(n)] = statistics.median(compile_times)
        out["load_compile_s"][str(n)] = statistics.median(a + b for a, b in zip(load_times, compile_times))
    out["yaml_parser"] = YAML(typ="safe").Parser.__name__  # CParser: libyaml via ruamel.yaml.clib; Parser: pure Python
    print(json.dumps(out))


if __name__ == "__main__":
    main()
