"""cors-export apig round trip: export -> apig_import -> load answers as the original policy, except where warned.

For every shipped policy, every lint case that loads, every file of the fuzzed corpus that loads, generated
policies (tests/property/gateway_model.setups) and the policies built here, the gateway's answers (the
bytes gateway.py would send: status, headers, body of gateway-made responses; the headers it puts on two
upstream responses, one with the backend's own CORS headers) are compared over a matrix of at least 500
requests derived from the policy. Two checks:

- the round trip answers exactly as the original policy with each warned feature replaced by what APIG does
  instead (EXPECTED_INSTEAD below, written here from the README's list, not taken from the exporter);
- every request where the round trip and the original differ is explained by a warning: replacing that one
  warned feature in the original changes the answer to that request.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import find, given, settings, strategies as st
from hypothesis.errors import NoSuchExample, Unsatisfiable

from addon.core.cors import Engine, RequestFacts
from addon.core.origins import parse_origin_rule
from addon.core.policy import (
    MAX_YAML_BYTES,
    CorsPlugin,
    LoadedPolicy,
    Policy,
    PolicyError,
    Problem,
    load_policy,
    parse_policy,
)
from addon.core.routing import parse_path
from addon.gateway import edited_fields, made_fields
from addon.tools.apig_export import export_apig
from addon.tools.apig_import import convert, read_document, to_json, to_yaml
from tests.fuzz.corpus import build
from tests.property.common import fixed
from tests.property.gateway_model import setups
from tests.property.origin_model import near_misses

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "policies").glob("*.yaml"))
LINT_CASES = sorted(p for p in (ROOT / "tests" / "lint_cases").iterdir() if p.name != "expected.yaml")
MIN_REQUESTS = 500
REQUEST_ID = re.compile(r"[0-9a-f]{32}")

# What APIG does instead of each feature the exporter warns about, by the warned field (README "To APIG").
APIG_GATEWAY = {"request_id": True, "server": "api-gateway", "unmatched": "reject"}
PLUGIN_INSTEAD = {"allow_origin": (), "allow_origin_regex": (), "allow_null_origin": False,
                  "allow_private_network": False,
                  "preflight": "answer", "precedence": "backend", "max_age": 86400}
UPSTREAM_FIELDS = (  # two upstream responses: a CORS-less backend, and one that sends its own CORS headers
    ((b"Content-Type", b"text/plain"), (b"X-Up", b"1")),
    ((b"Content-Type", b"text/plain"), (b"Access-Control-Allow-Origin", b"https://backend.example"),
     (b"Vary", b"Accept")),
)


# -- the matrix ---------------------------------------------------------------------------------------------

def matrix(policy: Policy, seed: str, extra_origins: tuple[str, ...] | None = None) -> list[RequestFacts]:
    """origins x (actual methods + preflights x request headers) x credentials x hosts (the APIs' and the groups'
    domains) x paths x TLS (when an API's req_protocol is not BOTH), from the policy.

    Origins matching its regexes come from hypothesis' regex strategy, or, inside a hypothesis test (which
    cannot search for examples), from extra_origins."""
    rnd = random.Random(seed)
    apis = list(policy.apis) if len(policy.apis) <= 5 else rnd.sample(list(policy.apis), 5)
    paths = {"/", "/nothing-here", "/a/b"}
    for api in apis:
        concrete = "/" + "/".join({"lit": t, "param": "v", "rest": "v/w"}[k] for k, t in parse_path(api.path))
        paths.add(concrete.replace("//", "/") if api.match_mode == "NORMAL" else concrete.rstrip("/") + "/sub")
    domains = sorted({d for group in policy.groups.values() for d in group.domains[:2]})[:3]  # a group's second
    hosts = ["gw.example", *sorted({api.host for api in apis if api.host})[:2], *domains]   # domain: not exported
    tls = (False, True) if any(api.req_protocol != "BOTH" for api in policy.apis) else (False,)
    origins: list[str | None] = [None, "null", "https://evil.example", "https://app.example.com.evil.net",
                                 "https://app.example.com"]
    for plugin in [p for p in policy.plugins.values() if isinstance(p, CorsPlugin)][:3]:
        regexes = plugin.content.allow_origin_regex if extra_origins is None else ()
        origins.extend(_origins_of(plugin.content.allow_origin, regexes, rnd))
    origins = list(dict.fromkeys([*origins, *(extra_origins or ())]))[:10]
    kinds: list[tuple[str, str | None, tuple[str, ...], bool]] = [
        (m, None, (), False) for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")]
    for method in ("GET", "PUT", "patch", "X-Custom"):
        for headers, private in (((), False), (("content-type",), False), (("content-type",), True),
                                 (("X-Sdk-Date", "authorization"), False)):
            kinds.append(("OPTIONS", method, headers, private))
    # Routing walks every segment: a path of thousands (the fuzzed corpus has 50,000) is asked by one origin.
    return [
        RequestFacts(method, host, path, origin, request_method if origin else None, headers if origin else (),
                     private and origin is not None, authorization, secure)
        for path in sorted(paths) for origin in (origins if len(path) <= 1000 else origins[-1:]) for host in hosts
        for method, request_method, headers, private in kinds for authorization in (False, True) for secure in tls
    ]


def _origins_of(rules: tuple[str, ...], regexes: tuple[str, ...], rnd: random.Random) -> Iterator[str]:
    """Origins each rule admits (and a near miss), and strings the regexes match in full."""
    for text in rules[:3] if len(rules) <= 3 else rnd.sample(list(rules), 3):
        rule = parse_origin_rule(text)
        if rule.kind == "exact" and rule.origin:
            yield str(rule.origin)
            yield str(rule.origin).upper().replace("HTTPS://", "https://").replace("HTTP://", "http://")
        elif rule.kind == "wildcard" and rule.origin:
            yield f"{rule.origin.scheme}://a.{rule.origin.host}"
            yield f"{rule.origin.scheme}://{rule.origin.host}"  # the apex: never admitted
        else:
            yield "https://any.example"
    for pattern in regexes[:2]:
        try:  # the simplest string the pattern matches in full, on one line
            yield find(st.from_regex(pattern, fullmatch=True), lambda s: "\n" not in s and "\r" not in s,
                       settings=settings(database=None, max_examples=200, derandomize=True))
        except (NoSuchExample, Unsatisfiable):  # the matrix has the other origins
            continue


# -- the answers ---------------------------------------------------------------------------------------------

def answer(engine: Engine, req: RequestFacts) -> tuple[Any, ...]:
    """What the gateway sends for req, by gateway.py's own field builders (make_response and apply_edit use
    them; called directly, as a mitmproxy Response per request would triple the cost): the status, fields and
    body of gateway-made responses, the fields of the upstream responses once edited."""
    decision = engine.decide(req)
    if decision.action == "pass":
        return ("pass",)
    if decision.action == "respond":
        made = decision.response
        assert made is not None
        fields = made_fields if decision.request_id is None else made_fields.__wrapped__
        return ("respond", made.status, _fields(fields(made, decision.cors, decision.request_id,
                                                        engine.policy.gateway.server)), _body(made.body))
    edited = []
    for upstream in UPSTREAM_FIELDS:
        edited.append(_fields(edited_fields(upstream, decision.cors, decision.request_id) or upstream))
    return ("forward", *edited)


def _fields(fields: Any) -> tuple[tuple[str, str], ...]:
    """Names case-insensitively, in any order; an X-Request-Id only as well formed or not."""
    out = []
    for name, value in fields:
        low, text = name.decode().lower(), value.decode()
        if low == "x-request-id":
            text = "<request-id>" if REQUEST_ID.fullmatch(text) else f"<malformed {text!r}>"
        out.append((low, text))
    return tuple(sorted(out))


def _body(content: bytes | None) -> Any:
    try:
        document = json.loads(content or b"null")
    except ValueError:
        return content
    if isinstance(document, dict) and "request_id" in document:
        document["request_id"] = "<request-id>" if REQUEST_ID.fullmatch(document["request_id"]) else "<bad>"
    return json.dumps(document, sort_keys=True)


# -- the round trip ------------------------------------------------------------------------------------------

def round_trip(loaded: LoadedPolicy) -> tuple[LoadedPolicy, list[Problem]]:
    """export -> apig_import (the one file, plug-ins included) -> load, as a user would."""
    text, warnings = export_apig(loaded)
    imported = convert(read_document(text, "export.json"))
    if len(imported.policy["apis"]) <= 300:
        yaml = to_yaml(imported)  # as scripts/apig-import writes it; JSON (-o X.json) past the YAML size cap
        if len(yaml.encode()) <= MAX_YAML_BYTES:
            return parse_policy(yaml, "imported.yaml"), warnings
        return parse_policy(to_json(imported), "imported.json"), warnings
    # Past APIG's 300 APIs per import (warned), the file would be past the loader's size caps: validated as data.
    assert any(w.field == "apis" and "at most 300" in w.message for w in warnings)
    return LoadedPolicy(Policy.model_validate(imported.policy), "imported", "imported"), warnings


def loc_of(problem: Problem, policy: Policy) -> tuple[Any, ...]:
    """A warning's field path back as a location (plug-in names may hold dots: matched against the policy)."""
    m = re.fullmatch(r"apis\[(\d+)\](?:\.(.+))?", problem.field)
    if m:
        return ("apis", int(m.group(1)), *(m.group(2).split(".") if m.group(2) else ()))
    if problem.field.startswith("gateway.") or problem.field == "apis":
        return tuple(problem.field.split("."))
    if problem.field.startswith("groups.") and problem.field.endswith(".domains"):
        group = problem.field[len("groups."):-len(".domains")]
        assert group in policy.groups, problem.field
        return ("groups", group, "domains")
    rest = problem.field.removeprefix("plugins.")
    for name in policy.plugins:
        if rest == name:
            return ("plugins", name)
        if rest.startswith(name + ".content.") and rest[len(name) + 9:] in PLUGIN_INSTEAD:
            return ("plugins", name, "content", rest[len(name) + 9:])
    raise AssertionError(f"warning on a field the policy does not have: {problem.field}")


def apig_instead(policy: Policy, locs: list[tuple[Any, ...]]) -> Policy:
    """The policy with each warned feature replaced by what APIG does instead."""
    doc = policy.model_dump()
    doc["apis"] = list(doc["apis"])
    exported_group = next((api.group for api in policy.apis if api.group), "")  # the document's one group
    dropped = []
    for loc in locs:
        match loc:
            case ("gateway", name):
                doc["gateway"][name] = APIG_GATEWAY[name]
            case ("plugins", name, "content", name2):
                doc["plugins"][name]["content"][name2] = PLUGIN_INSTEAD[name2]
            case ("groups", name, "domains"):  # Swagger's host: the group's first domain name
                doc["groups"][name]["domains"] = doc["groups"][name]["domains"][:1]
            case ("apis", i, "group"):  # imported into the document's group (its domains are the same)
                doc["apis"][i]["group"] = exported_group
            case ("apis", i, "host"):
                doc["apis"][i]["host"] = None
            case ("apis", i, "backend", "status"):
                doc["apis"][i]["backend"]["status"] = 200
            case ("apis", i, "backend", "headers"):
                doc["apis"][i]["backend"]["headers"] = {"Content-Type": "application/json"}
            case ("apis", i):
                dropped.append(i)
            case _:  # names, allow_origin written for APIG, the 300-API limit: nothing the gateway answers differently
                pass
    for i in sorted(dropped, reverse=True):
        del doc["apis"][i]
    return Policy.model_validate(doc)


@dataclass
class Tally:
    name: str
    requests: int = 0
    differences: int = 0
    explained_by: Counter[str] = field(default_factory=Counter)
    warned: list[str] = field(default_factory=list)

    def line(self) -> str:
        why = ", ".join(f"{k} ({v})" for k, v in sorted(self.explained_by.items())) or "-"
        return (f"{self.name}: {self.requests} requests, {self.differences} differences; "
                f"warned: {', '.join(self.warned) or 'none'}; differences explained by: {why}")


def check_round_trip(loaded: LoadedPolicy, name: str, extra_origins: tuple[str, ...] | None = None) -> Tally:
    """The two checks of the module docstring; returns the tally."""
    back, warnings = round_trip(loaded)
    original = loaded.policy
    locs = [loc_of(w, original) for w in warnings]
    requests = matrix(original, name, extra_origins)
    assert len(requests) >= MIN_REQUESTS, (name, len(requests))
    tally = Tally(name, len(requests), warned=[w.field for w in warnings])
    engines = {"original": Engine(loaded), "back": Engine(back),
               "instead": Engine(LoadedPolicy(apig_instead(original, locs), "instead", "instead"))}
    # An API left out is its own warned feature; the others are judged on the policy without those APIs
    # (without them, a host removed alone can make a routing tie).
    drops = [k for k, loc in enumerate(locs) if len(loc) == 2 and loc[0] == "apis"]
    base = (Engine(LoadedPolicy(apig_instead(original, [locs[k] for k in drops]), "base", "base"))
            if drops else engines["original"])
    single: dict[int, Engine | None] = {}

    def engine_with(k: int) -> Engine | None:
        """The policy with feature k replaced (None when that changes nothing the gateway reads: a name)."""
        if k not in single:
            with_k = [locs[k]] if k in drops else [locs[k], *(locs[j] for j in drops)]
            changed = apig_instead(original, with_k)
            unchanged = original if k in drops else base.policy  # a drop alone is judged against the original
            single[k] = None if changed == unchanged else Engine(LoadedPolicy(changed, "one", "one"))
        return single[k]

    def changes(k: int, req: RequestFacts, reference: tuple[Any, ...]) -> bool:
        engine = engine_with(k)
        return engine is not None and answer(engine, req) != reference

    for req in requests:
        got = answer(engines["back"], req)
        assert got == answer(engines["instead"], req), (name, req)  # exact, apart from the warned features
        before = answer(engines["original"], req)
        if got == before:
            continue
        tally.differences += 1
        without_drops = answer(base, req)
        explains = [warnings[k].field for k in drops if changes(k, req, before)]
        explains += [warnings[k].field for k in range(len(locs)) if k not in drops and changes(k, req, without_drops)]
        assert explains, (name, req, before, got, tally.warned)  # a difference no warning names
        tally.explained_by.update(explains)
    print(tally.line())
    return tally


# -- the policies ---------------------------------------------------------------------------------------------

def _loads(path: Path) -> bool:
    try:
        load_policy(path)
    except PolicyError:
        return False
    return True


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policies_round_trip(path: Path) -> None:
    check_round_trip(load_policy(path), path.name)


@pytest.mark.parametrize("path", [p for p in LINT_CASES if _loads(p)], ids=lambda p: p.name)
def test_lint_cases_round_trip(path: Path) -> None:
    check_round_trip(load_policy(path), path.name)


def test_fuzzed_corpus_round_trips(tmp_path: Path) -> None:
    loaded = []
    for item in build(tmp_path):
        try:
            loaded.append((item.path.name, load_policy(item.path)))
        except PolicyError:
            continue
    assert len(loaded) >= 50  # the corpus keeps dozens of loadable files (shipped, harmless mutations, huge)
    totals: Counter[str] = Counter()
    for name, policy in loaded:
        if not policy.policy.apis:  # refused, located (test_a_policy_without_apis_is_refused)
            with pytest.raises(PolicyError, match="no APIs"):
                export_apig(policy)
            totals["refused: no APIs"] += 1
            continue
        tally = check_round_trip(policy, name)
        totals["policies"] += 1
        totals["requests"] += tally.requests
        totals["differences"] += tally.differences
    print(f"fuzzed corpus: {dict(totals)}")


@fixed(15)
@given(setups(), st.data())
def test_generated_policies_round_trip(setup: Any, data: st.DataObject) -> None:
    extra = tuple(data.draw(near_misses(setup.allow)).value for _ in range(6))
    tally = check_round_trip(setup.engine.loaded, "generated", extra)
    for feature in ("preflight", "precedence", "allow_private_network", "allow_null_origin", "allow_origin_regex"):
        default = {"preflight": "answer", "precedence": "backend"}.get(feature, False if "allow_" in feature else ())
        if feature == "allow_origin_regex":
            default = []
        warned = any(w.endswith(f".content.{feature}") for w in tally.warned)
        assert warned == (setup.content[feature] != default), (feature, setup.content[feature], tally.warned)


# -- a policy with everything APIG lacks ------------------------------------------------------------------------

EVERYTHING = """\
version: 1
gateway:
  request_id: false
  server: corsgate
  unmatched: pass
plugins:
  web:
    type: cors
    content:
      allow_origin: "https://app.example.com,https://*.example.com"
      allow_origin_regex: ["https://pr-[0-9]+\\\\.preview\\\\.example\\\\.net"]
      allow_null_origin: true
      allow_methods: GET,PUT
      allow_headers: Content-Type,X-Sdk-Date
      expose_headers: X-Request-Id
      max_age: 100000
      allow_credentials: true
      allow_private_network: true
      preflight: forward
      precedence: gateway
  p:
    type: cors
    content: {allow_origin: "*"}
apis:
  - name: users
    group: shop
    method: ANY
    path: /users/{id}
    host: api.example.com
    plugins: [web]
  - name: users-prefix
    group: shop
    method: ANY
    path: /users/{id}
    match_mode: SWA
    plugins: [p]
  - name: users-other-name
    group: admin
    method: ANY
    path: /users/{uid}
    plugins: [p]
  - name: teapot
    group: shop
    method: GET
    path: /teapot
    cors: true
    backend: {type: mock, status: 418, body: '{"short": "and stout", "q": "\\"}\\n"}', headers: {X-Tea: "1"}}
  - name: teapot
    group: shop
    method: OPTIONS
    path: /
    match_mode: SWA
    cors: true
    backend: {type: mock, headers: {content-type: application/json}}
"""


def exported(tmp_path: Path, name: str, text: str) -> tuple[LoadedPolicy, str, list[Problem]]:
    """A policy written to a file (so warnings have lines), loaded and exported."""
    path = tmp_path / name
    path.write_text(text)
    loaded = load_policy(path)
    return loaded, *export_apig(loaded)


def test_every_extension_is_warned_at_its_line_and_round_trips(tmp_path: Path) -> None:
    loaded, text, warnings = exported(tmp_path, "everything.yaml", EVERYTHING)
    assert [(w.line, w.field) for w in warnings] == [
        (3, "gateway.request_id"), (4, "gateway.server"), (5, "gateway.unmatched"),
        (11, "plugins.web.content.allow_origin_regex"), (12, "plugins.web.content.allow_null_origin"),
        (16, "plugins.web.content.max_age"), (18, "plugins.web.content.allow_private_network"),
        (19, "plugins.web.content.preflight"), (20, "plugins.web.content.precedence"),
        (21, "plugins.p"),  # too short for APIG's plug-in names
        (29, "apis[0].host"),
        (31, "apis[1]"),  # SWA next to NORMAL on one path and method: an OpenAPI path item holds one
        (37, "apis[2]"),  # /users/{uid} ties with /users/{id} once the host is gone
        (47, "apis[3].backend.status"), (47, "apis[3].backend.headers"),
        (48, "apis[4].name"),  # its mock's content-type is APIG's, whatever the case of the name
    ]
    by_field = {w.field: w.message for w in warnings}
    assert "users-other-name" in by_field["apis[2]"] and "'users'" in by_field["apis[2]"]
    assert "answers 200" in by_field["apis[3].backend.status"]
    document = json.loads(text)
    assert list(document["paths"]) == ["/users/{id}", "/teapot", "/"]  # users-prefix: ANY /users/{id} is taken
    assert document["paths"]["/teapot"]["get"]["x-apigateway-backend"]["mockEndpoints"] == {
        "result-content": '{"short": "and stout", "q": "\\"}\\n"}'}
    plugin = {p["plugin_name"]: json.loads(p["plugin_content"]) for p in document["x-corsgate-plugins"]}
    assert plugin["web"] == {"allow_origin": "https://app.example.com,https://*.example.com",
                             "allow_methods": "GET,PUT", "allow_headers": "Content-Type,X-Sdk-Date",
                             "expose_headers": "X-Request-Id", "max_age": 86400, "allow_credentials": True}
    tally = check_round_trip(loaded, "everything.yaml")
    assert tally.differences > 0
    for feature in ("gateway.unmatched", "gateway.request_id", "plugins.web.content.preflight",
                    "plugins.web.content.precedence", "plugins.web.content.allow_null_origin",
                    "plugins.web.content.allow_private_network", "apis[0].host", "apis[3].backend.status"):
        assert tally.explained_by[feature] > 0, (feature, tally.line())


def test_swa_and_normal_on_one_path_keep_the_first(tmp_path: Path) -> None:
    path = tmp_path / "two.json"
    path.write_text('{"version": 1, "apis": [{"name": "exact", "method": "GET", "path": "/a"},\n'
                    ' {"name": "prefix", "method": "GET", "path": "/a", "match_mode": "SWA"}]}')
    loaded = load_policy(path)
    text, warnings = export_apig(loaded)
    assert [(w.line, w.field) for w in warnings] == [(1, "gateway.unmatched"), (2, "apis[1]")]
    path.write_text(path.read_text() + " ")  # changed since it was loaded: no lines rather than wrong ones
    assert [(w.line, w.field) for w in export_apig(loaded)[1]] == [(None, "gateway.unmatched"), (None, "apis[1]")]
    assert [a.name for a in round_trip(loaded)[0].policy.apis] == ["exact"]


def test_hostile_strings_are_escaped_by_the_json_library() -> None:
    hostile = 'x"}, "swagger": "3", "paths": {"/evil": {}}, "x": {"a\\u2028\\n#'
    loaded = LoadedPolicy(Policy.model_validate({
        "version": 1, "plugins": {hostile: {"type": "cors", "content": {"allow_origin": "*"}}},
        "apis": [{"name": hostile, "group": hostile, "method": "GET", "path": "/a'\"b/{id}", "plugins": [hostile],
                  "backend": {"type": "mock", "body": hostile}}]}), "<built>", "built")
    text, _ = export_apig(loaded)
    document = json.loads(text)
    assert document["swagger"] == "2.0" and list(document["paths"]) == ["/a'\"b/{id}"]
    (api,) = round_trip(loaded)[0].policy.apis
    assert (api.name, api.group, api.backend.body, api.plugins) == (hostile, hostile, hostile, (hostile,))


def test_a_policy_without_apis_is_refused() -> None:
    with pytest.raises(PolicyError, match="no APIs"):
        export_apig(parse_policy('{"version": 1}', "empty.json"))


def test_apig_import_reads_the_one_exported_file(tmp_path: Path) -> None:
    export = tmp_path / "strict.json"
    export.write_text(export_apig(load_policy(ROOT / "policies" / "strict-allowlist.yaml"))[0])
    out = tmp_path / "imported.yaml"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "apig-import"), str(export), "-o", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    policy = load_policy(out).policy
    assert policy.apis[0].plugins == ("web-app",)
    assert policy.plugins["web-app"].content.allow_origin == load_policy(
        ROOT / "policies" / "strict-allowlist.yaml").policy.plugins["web-app"].content.allow_origin


_LITERAL = st.text(st.characters(blacklist_characters="{}?#/", blacklist_categories=("Cs", "Z", "Cc")), max_size=8)


@fixed(60)
@given(name=st.text(), group=st.text(), plugin_name=st.text(min_size=1).filter(lambda s: s.strip() == s),
       body=st.text(), segments=st.lists(_LITERAL, min_size=1, max_size=3))
def test_any_strings_come_back_as_they_were(name: str, group: str, plugin_name: str, body: str,
                                            segments: list[str]) -> None:
    path = "/" + "/".join(s or "x" for s in segments[:-1]) + ("/" if segments[:-1] else "") + segments[-1]
    loaded = LoadedPolicy(Policy.model_validate({
        "version": 1, "plugins": {plugin_name: {"type": "cors", "content": {"allow_origin": "https://a.example"}}},
        "apis": [{"name": name, "group": group, "method": "POST", "path": path, "plugins": [plugin_name],
                  "backend": {"type": "mock", "body": body, "headers": {"Content-Type": "application/json"}}}]}),
        "<built>", "built")
    document = json.loads(export_apig(loaded)[0])
    assert list(document["paths"]) == [path] and list(document["paths"][path]) == ["post"]
    (api,) = round_trip(loaded)[0].policy.apis
    assert (api.name, api.path, api.backend.body, api.plugins) == (name or f"POST {path}", path, body, (plugin_name,))
    assert api.group == (group or "<built>")


# -- issue 18's model: set_resp_headers, groups and their domains, req_protocol, an empty allow_origin ---------

GROUPS = """\
version: 1
groups:
  shop: {domains: [api.shop.example, www.shop.example]}
  admin: {domains: [admin.shop.example]}
plugins:
  previews:
    type: cors
    content:
      allow_origin_regex: ["https://pr-[0-9]+\\\\.preview\\\\.example\\\\.com"]
  headers:
    type: set_resp_headers
    content:
      response_headers:
        - {name: X-Added, value: "1", action: add}
        - {name: Server, action: delete}
apis:
  - {name: orders, group: shop, method: PUT, path: /orders, req_protocol: HTTPS, plugins: [previews, headers]}
  - {name: carts, group: shop, method: GET, path: /carts, req_protocol: http, cors: true}
  - {name: users, group: admin, method: PUT, path: /users, cors: true}
  - {name: both, group: shop, method: GET, path: /both}
"""


def test_groups_protocols_resp_headers_and_empty_origins(tmp_path: Path) -> None:
    loaded, text, warnings = exported(tmp_path, "groups.yaml", GROUPS)
    assert [(w.line, w.field) for w in warnings] == [
        (1, "gateway.unmatched"),
        (3, "groups.shop.domains"),  # Swagger has one host: the first domain
        (8, "plugins.previews.content.allow_origin"),  # absent, so at its content; written as no-caller.invalid
        (9, "plugins.previews.content.allow_origin_regex"),
        (19, "apis[2]"),  # another group with other domains: left out
    ]
    by_field = {w.field: w.message for w in warnings}
    assert "www.shop.example" in by_field["groups.shop.domains"] and "'admin'" in by_field["apis[2]"]
    document = json.loads(text)
    assert (document["info"]["title"], document["host"]) == ("shop", "api.shop.example")
    assert [document["paths"][p][m]["schemes"] for p, m in (("/orders", "put"), ("/carts", "get"), ("/both", "get"))] \
        == [["https"], ["http"], ["http", "https"]]
    assert "/users" not in document["paths"]
    plugins = {p["plugin_name"]: p for p in document["x-corsgate-plugins"]}
    assert plugins["headers"]["plugin_type"] == "set_resp_headers"
    assert json.loads(plugins["headers"]["plugin_content"]) == {"response_headers": [
        {"name": "X-Added", "value": "1", "action": "add", "value_type": "custom_value"},
        {"name": "Server", "value": "", "action": "delete", "value_type": "custom_value"}]}
    assert json.loads(plugins["previews"]["plugin_content"]) == {"allow_origin": "https://no-caller.invalid",
                                                                   "allow_credentials": False}
    back = round_trip(loaded)[0].policy
    assert back.groups["shop"].domains == ("api.shop.example",)
    assert [(a.name, a.group, a.req_protocol, a.plugins) for a in back.apis] == [
        ("orders", "shop", "HTTPS", ("previews", "headers")), ("carts", "shop", "HTTP", ()),
        ("both", "shop", "BOTH", ())]
    assert back.plugins["previews"].content.allow_origin == ()  # read back as admitting no origin
    assert back.plugins["headers"] == loaded.policy.plugins["headers"]
    tally = check_round_trip(loaded, "groups.yaml")
    for feature in ("groups.shop.domains", "apis[2]", "plugins.previews.content.allow_origin_regex"):
        assert tally.explained_by[feature] > 0, (feature, tally.line())
