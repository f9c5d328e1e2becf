#!/usr/bin/env python3
"""Generate a corsgate policy with N APIs, for the benchmark (DESIGN.md §4 format).

The shape imitates an imported APIG group rather than a toy: five APIs per host
(NORMAL and SWA, `{param}` and `{param+}`, mixed methods including ANY), every
hundredth API on any host under its own prefix, three CORS plug-ins bound in
turn (the benchmarked GET APIs always to the credentialed allowlist, the
costliest to decide). The request the benchmark sends (`bench_target(n)`) hits
an API in the middle of the list, so a router that scans in file order cannot
look fast by matching the first entry.

    scripts/genpolicy.py 10000 > /tmp/apis-10000.yaml
    scripts/genpolicy.py --json 10000 > /tmp/apis-10000.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NamedTuple

PER_HOST = 5
ORIGIN = "https://app.bench.test"
PLUGINS = ("cors-app", "cors-wild", "cors-open")
METHODS = "GET,POST,PUT,DELETE,PATCH,HEAD"


class Target(NamedTuple):
    """A request that hits the middle API of a generated policy."""

    host: str
    path: str
    api_name: str


def host_of(group: int) -> str:
    """Host of the group-th set of APIs."""
    return f"svc-{group:05d}.bench.test"


def bench_target(n: int) -> Target:
    """The GET the benchmark sends: `GET /v1/users/{id}` on the middle host."""
    group = (n // PER_HOST) // 2
    return Target(host_of(group), "/v1/users/4711", f"get-user-{group}")


def _apis(n: int) -> list[dict[str, Any]]:
    apis: list[dict[str, Any]] = []

    def api(name: str, method: str, path: str, mode: str, host: str | None, plugin: str = "") -> None:
        if len(apis) >= n:
            return
        entry: dict[str, Any] = {"name": name, "group": "bench", "method": method, "path": path, "match_mode": mode}
        if host:
            entry["host"] = host
        entry["cors"] = True
        entry["plugins"] = [plugin or PLUGINS[len(apis) % len(PLUGINS)]]
        apis.append(entry)

    group = 0
    while len(apis) < n:
        host = host_of(group)
        api(f"get-user-{group}", "GET", "/v1/users/{id}", "NORMAL", host, PLUGINS[0])
        api(f"put-user-{group}", "PUT", "/v1/users/{id}", "NORMAL", host)
        api(f"post-order-{group}", "POST", "/v1/users/{id}/orders", "NORMAL", host)
        api(f"files-{group}", "ANY", "/v1/files/{path+}", "NORMAL", host)
        api(f"static-{group}", "GET", "/static", "SWA", host)
        if group % (100 // PER_HOST) == 0:
            api(f"shared-{group}", "DELETE", f"/shared{group}/{{kind}}/{{id}}", "SWA", None)
        group += 1
    return apis


def policy(n: int) -> dict[str, Any]:
    """The policy document with exactly n APIs."""
    return {
        "version": 1,
        "gateway": {"request_id": True, "unmatched": "pass"},
        "plugins": {
            "cors-app": {"type": "cors", "content": {
                "allow_origin": f"{ORIGIN},https://admin.bench.test", "allow_methods": METHODS,
                "allow_headers": "Content-Type,Authorization,X-Requested-With", "expose_headers": "X-Request-Id",
                "max_age": 600, "allow_credentials": True}},
            "cors-wild": {"type": "cors", "content": {
                "allow_origin": "https://*.bench.test", "allow_methods": METHODS,
                "allow_headers": "Content-Type,X-Requested-With", "max_age": 600}},
            "cors-open": {"type": "cors", "content": {
                "allow_origin": "*", "allow_methods": METHODS, "allow_headers": "*"}},
        },
        "apis": _apis(n),
    }


def to_yaml(node: Any, indent: str = "") -> str:
    """Block-style YAML for this document's shapes; scalars and short lists are written as JSON, which YAML reads."""
    if isinstance(node, dict) and node:
        lines = []
        for key, value in node.items():
            if isinstance(value, dict) and value or isinstance(value, list) and value and isinstance(value[0], dict):
                lines.append(f"{indent}{key}:\n{to_yaml(value, indent + '  ')}")
            else:
                lines.append(f"{indent}{key}: {json.dumps(value)}")
        return "\n".join(lines)
    if isinstance(node, list) and node:
        items = []
        for item in node:
            body = to_yaml(item, indent + "  ")
            items.append(f"{indent}- {body[len(indent) + 2:]}")
        return "\n".join(items)
    return f"{indent}{json.dumps(node)}"


def generate(n: int, as_json: bool = False) -> str:
    """Policy text with exactly n APIs, YAML (default) or JSON."""
    doc = policy(n)
    return json.dumps(doc, separators=(",", ":")) + "\n" if as_json else to_yaml(doc) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of APIs")
    parser.add_argument("--json", action="store_true", help="write JSON instead of YAML")
    args = parser.parse_args()
    if args.n < 0:
        parser.error("n must be >= 0")
    sys.stdout.write(generate(args.n, args.json))


if __name__ == "__main__":
    main()
