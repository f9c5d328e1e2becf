"""The differential test's matrix: which exchanges Chromium and verdict.py both judge (issue 3, item 2).

Dimensions: policy (the shipped ones, five generated ones, report mode) x page origin
x method x request headers x credentials mode x backend behaviour. Their product is
4,320 exchanges; per policy, a seeded greedy all-pairs cover picks the few that put
every pair of dimension values in at least one exchange (about 28 per policy, 280 in
all), and PINNED adds rows a pair cover does not reach. Pure data and generation:
nothing here starts a process or a browser.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.support.procs import REPO

SEED = 20261128
REPORT = ("--set", "cors_mode=report")

PAGE = "page"  # http://127.0.0.1:A: allowed by the generated allowlists, same site as the proxy
OTHER = "other"  # http://localhost:A: allowed only where a policy allows every origin
ORIGINS = (PAGE, OTHER)
METHODS = ("GET", "POST", "PUT", "DELETE", "patch")  # `patch`: fetch does not upper-case it
HEADERS: dict[str, dict[str, str]] = {
    "none": {},
    "json": {"Content-Type": "application/json"},
    "sdk-date": {"X-Sdk-Date": "20261128T120000Z"},
    "authorization": {"Authorization": "Bearer t0ken"},
}
CREDENTIALS = ("omit", "include")
# What the upstream does. "acao": the backend sends its own Access-Control-Allow-Origin, for the PAGE
# origin only (a backend with an allowlist of one); "acao-500" with status 500, which fails a preflight
# forwarded to it on the status alone. DOWN: a proxy whose upstream nothing listens on.
DOWN = "down"
BEHAVIOURS = ("plain", "404", "500", "acao", "acao-500", DOWN)

# Generated policies: {page} is the allowed page origin (http://127.0.0.1:A).
_ALLOWLIST = """\
version: 1
plugins:
  app:
    type: cors
    content:
      allow_origin: "{{page}}"
      allow_methods: {methods}
      allow_headers: {headers}
      expose_headers: X-Request-Id
      allow_credentials: {credentials}
      precedence: {precedence}
apis:
  - name: api
    method: ANY
    path: /
    match_mode: SWA
    plugins: [app]
"""
GENERATED: dict[str, str] = {
    "allow-credentials.yaml": _ALLOWLIST.format(
        methods="GET,POST,PUT,DELETE,PATCH", headers="Content-Type,Authorization,X-Sdk-Date", credentials="true",
        precedence="backend",
    ),
    "allow-no-credentials.yaml": _ALLOWLIST.format(
        methods="GET,POST,PUT,DELETE,PATCH", headers="Content-Type,Authorization,X-Sdk-Date", credentials="false",
        precedence="backend",
    ),
    # The backend's own Access-Control-* fields are dropped, and `*` lists are echoed because of credentials.
    "gateway-precedence.yaml": _ALLOWLIST.format(
        methods='"*"', headers='"*"', credentials="true", precedence="gateway",
    ),
    # Any origin, but PUT, DELETE, patch, X-Sdk-Date and Authorization missing from the lists.
    "partial-plugin.yaml": _ALLOWLIST.replace('"{{page}}"', '"*"').format(
        methods="GET,POST", headers="Content-Type", credentials="false", precedence="backend",
    ),
    # `*` everywhere without credentials: sent literally, so Authorization rides on Chromium's leniency.
    "star.yaml": _ALLOWLIST.replace('"{{page}}"', '"*"').format(
        methods='"*"', headers='"*"', credentials="false", precedence="backend",
    ),
}


@dataclass(frozen=True)
class PolicySpec:
    """One policy of the matrix, the path its exchanges use and how its proxies run."""

    name: str
    file: str  # in policies/ or, for generated ones, a key of GENERATED
    path: str  # request path: inside the policy's APIs
    report: bool = False  # cors_mode=report: the gateway changes nothing
    down: bool = False  # also behind an unreachable upstream (one more proxy)

    def source(self, tmp: Path, page_origin: str) -> Path:
        """The policy file: shipped, or generated into tmp for this page origin."""
        if self.file not in GENERATED:
            return REPO / "policies" / self.file
        path, text = tmp / self.file, GENERATED[self.file].format(page=page_origin)
        if not path.exists() or path.read_text() != text:  # a running proxy reloads a rewritten policy
            path.write_text(text)
        return path

    @property
    def behaviours(self) -> tuple[str, ...]:
        return BEHAVIOURS if self.down else BEHAVIOURS[:-1]


POLICIES = (
    PolicySpec("default", "default.yaml", "/dx/items", down=True),
    PolicySpec("apig-default", "apig-default.yaml", "/dx/items"),
    PolicySpec("apig-seed", "apig-seed.yaml", "/simple", down=True),  # only GET and PUT /simple are APIs
    PolicySpec("strict-allowlist", "strict-allowlist.yaml", "/api/items"),  # neither page origin is listed
    PolicySpec("allow-credentials", "allow-credentials.yaml", "/dx/items", down=True),
    PolicySpec("allow-no-credentials", "allow-no-credentials.yaml", "/dx/items"),
    PolicySpec("gateway-precedence", "gateway-precedence.yaml", "/dx/items"),
    PolicySpec("partial-plugin", "partial-plugin.yaml", "/dx/items"),
    PolicySpec("star", "star.yaml", "/dx/items"),
    PolicySpec("report", "default.yaml", "/dx/items", report=True, down=True),  # the CORS-less backend as it is
)


@dataclass(frozen=True)
class Exchange:
    """One fetch() of the matrix; `id` is unique and fixed-width, so `xid=<id>` finds its flows."""

    id: str
    policy: PolicySpec
    origin: str  # PAGE or OTHER
    method: str
    headers: str  # key of HEADERS
    credentials: str
    behaviour: str

    @property
    def include(self) -> bool:
        return self.credentials == "include"

    @property
    def tag(self) -> str:
        """What the recorder's path contains for this exchange's flows (and only theirs)."""
        return f"xid={self.id}"

    def url(self, proxy_url: str, backend_allows: str) -> str:
        """The fetch URL; backend_allows is the origin the backend's own ACAO names (the PAGE origin)."""
        acao = f"&acao={quote(backend_allows, safe='')}"
        query = {"404": "&status=404", "500": "&status=500", "acao": acao, "acao-500": acao + "&status=500"}
        return f"{proxy_url}{self.policy.path}?{self.tag}{query.get(self.behaviour, '')}"

    def request_headers(self) -> list[tuple[str, str]]:
        """The headers the page's request carries when the browser decides on a preflight: the page's own,
        plus the Content-Type fetch() gives a string body. (Chromium's network stack adds more below CORS,
        e.g. Pragma and Cache-Control for `no-store`; those never count.)"""
        headers = list(HEADERS[self.headers].items())
        if self.method != "GET" and "Content-Type" not in HEADERS[self.headers]:
            headers.append(("Content-Type", "text/plain;charset=UTF-8"))
        return headers

    def init(self) -> dict[str, Any]:
        """fetch()'s init. `no-store` also makes Chromium bypass its preflight cache."""
        init: dict[str, Any] = {
            "method": self.method, "headers": HEADERS[self.headers], "credentials": self.credentials,
            "cache": "no-store",
        }
        if self.method != "GET":  # a GET with a body is a TypeError
            init["body"] = "{}"
        return init

    def describe(self) -> str:
        return (
            f"{self.id} {self.policy.name} origin={self.origin} {self.method} headers={self.headers} "
            f"credentials={self.credentials} backend={self.behaviour}"
        )


def all_pairs(dimensions: Sequence[Sequence[str]], rng: random.Random) -> list[tuple[str, ...]]:
    """A small subset of the product in which every pair of values of two dimensions occurs.

    Greedy: take the candidate covering most uncovered pairs, first in a seeded shuffle on ties.
    """
    def pairs(row: tuple[str, ...]) -> set[tuple[int, str, int, str]]:
        return {(i, row[i], j, row[j]) for i, j in itertools.combinations(range(len(row)), 2)}

    candidates = list(itertools.product(*dimensions))
    rng.shuffle(candidates)
    uncovered = set().union(*map(pairs, candidates))
    chosen = []
    while uncovered:
        best = max(candidates, key=lambda row: len(pairs(row) & uncovered))
        chosen.append(best)
        uncovered -= pairs(best)
    return chosen


# Rows all-pairs need not produce, added by hand: (policy, origin, method, headers, credentials, behaviour).
PINNED = [
    # A backend that does CORS itself but has no OPTIONS handler: the preflight it answers fails on its status.
    ("report", PAGE, "PUT", "json", "omit", "acao-500"),
]


def exchanges(policies: Sequence[PolicySpec] = POLICIES, prefix: str = "dx") -> list[Exchange]:
    """The matrix, the same on every run; ids are `prefix` and four digits (one prefix per engine, since the
    engines share the proxies)."""
    rows: list[tuple[PolicySpec, tuple[str, ...]]] = []
    for spec in policies:
        rng = random.Random(f"{SEED}:{spec.name}")
        dimensions = (ORIGINS, METHODS, tuple(HEADERS), CREDENTIALS, spec.behaviours)
        rows += [(spec, row) for row in all_pairs(dimensions, rng)]
    by_name = {spec.name: spec for spec in policies}
    rows += [(by_name[name], tuple(row)) for name, *row in PINNED if name in by_name]
    return [Exchange(f"{prefix}{n:04d}", spec, *row) for n, (spec, row) in enumerate(rows)]
