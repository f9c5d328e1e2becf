"""Write a loaded policy as nginx configuration that answers as corsgate does (DESIGN §4, issue 16).

Pure: the validated policy objects in, nginx text and located problems out; scripts/cors-export does
the files. One family with apig_import.py (APIG in) and apig_export.py (APIG out).

How corsgate's behaviour is carried onto nginx:
- Routing: nginx's own location precedence differs from DESIGN §4.1, so there is one `location /`,
  and the API is chosen by a `map` over "$scheme $host $path $method" whose anchored regexes are written
  in corsgate's precedence order (routing.precedence); nginx tests a map's regexes in order of appearance
  and takes the first that matches. A group's domains stand for the host, req_protocol for the scheme. Two more such maps route the preflight as OPTIONS and as its
  Access-Control-Request-Method, and a pair map applies cors.py's rule for which of the two answers.
- Everything per request is a chain of `map`s (evaluated lazily, when a directive reads them), and every
  header is one `add_header ... always` at server level, so no location can drop it (add_header is
  inherited only by blocks that have none of their own); an empty value sends no header.
- Origins are matched by case-insensitive anchored regexes built from origins.parse_origin_rule's
  canonical form (scheme and host lower-cased, default port optional), after a regex that refuses what
  origins.parse_origin refuses; only an admitted origin is echoed, and a request's method or header list
  only when it is made of RFC 9110 tokens.
- The backend's Access-Control-* fields and X-Request-Id are hidden and put back unless the gateway's
  own decision replaces them (precedence: gateway, or a field the gateway sets).
- set_resp_headers: hidden and re-added fields per header name on upstream answers (_edits); a mock's
  fields are edited here, at export time, as gateway.made_fields edits them.
- Gateway-made answers (preflights, mocks, 401/403/404, 502/504) are `return`s whose JSON bodies are
  the ones responses.py writes, with $request_id (32 lowercase hex) as the request id.
Every string from the policy is escaped for the nginx string it lands in: regex text as \\xHH escapes,
values with quotes and backslashes escaped and `$` written as ${cg_dollar} (a geo constant).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from addon.core import origins
from addon.core.cors import APIG_PREFLIGHT_HEADERS, CorsRule
from addon.core.origins import DEFAULT_PORTS, Origin, parse_origin_rule
from addon.core.policy import Api, LoadedPolicy, Problem, _field_path, group_domains, line_of, located_tree
from addon.core.rawheaders import raw
from addon.core.resp_headers import RespHeaderRule
from addon.core.responses import (
    API_NOT_FOUND,
    APP_AUTH_MISSING,
    BACKEND_TIMEOUT,
    BACKEND_UNAVAILABLE,
    IAM_AUTH_MISSING,
    ORIGIN_NOT_ALLOWED,
    GatewayError,
)
from addon.core.routing import parse_path, precedence

HEADERS_MORE = "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so"  # Debian's path
DEFAULT_LISTEN = "127.0.0.1:8080"
CONNECT_TIMEOUT = 3  # seconds, as gateway.PROBE_TIMEOUT: then 504
# The backend's CORS fields nginx hides and puts back (it cannot hide a prefix: others pass untouched).
CORS_FIELDS = (
    "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
    "Access-Control-Allow-Private-Network",
)  # fmt: skip
# Mock header names nginx or this export manages itself: a mock cannot set them.
MANAGED = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "date",
                     "server", "vary", "x-request-id"}) | {f.lower() for f in CORS_FIELDS}
# `return` codes nginx gives a meaning of its own: redirects take the text as Location, 444 closes.
MAX_TOKEN = 4000  # nginx reads one directive parameter into a 4096-byte buffer ("too long parameter")
SPECIAL_STATUS = frozenset({301, 302, 303, 307, 308, 444, 494, 495, 496, 497, 499})
TCHAR = r"[!#$%&'*+.^_`|~0-9A-Za-z-]"
_PYTHON_ONLY = (  # regex constructs Python's re reads and PCRE reads differently (or not at all)
    (r"\\[uUN]", "\\u, \\U and \\N escapes"), (r"\(\?[aLu]", "the (?a), (?L) and (?u) flags"),
    (r"\{,", "{,n} quantifiers (PCRE reads them literally)"), (r"\[:", "'[:' (PCRE reads POSIX classes)"),
    (r"\\Z", "\\Z (end of string in Python, before a final newline in PCRE)"),
)  # fmt: skip

# A serialised origin as origins.parse_origin admits it, from its pieces (scheme, label), plus what it checks
# in code: a last label that is a number only as a dotted-decimal IPv4 address, a port up to 65535, a port
# for schemes without a default. IPv6 is not checked for its compressed form. Case-insensitive, anchored.
_LABEL = origins._LABEL
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_NAME = rf"(?:{_LABEL}\.)*(?!(?:[0-9]+|0x[0-9a-f]*)(?::|\z)){_LABEL}"
_HOST = rf"(?:(?:{_OCTET}\.){{3}}{_OCTET}(?=:|\z)|{_NAME}|\[[0-9a-f:.]+\])"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_DEFAULTED = "|".join(sorted(DEFAULT_PORTS))
VALID_ORIGIN = rf"(?!.{{2049}})(?:(?:{_DEFAULTED})://{_HOST}(?::{_PORT})?|{origins._SCHEME}://{_HOST}:{_PORT})"


class ExportError(Exception):
    """The policy cannot be exported; str() lists every located problem."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render(source) for p in problems))


@dataclass
class _Problems:
    """Errors and warnings found on the way, located by field path (lines added at the end)."""

    errors: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)
    warnings: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)

    def located(self, items: Iterable[tuple[tuple[Any, ...], str]], text: str | None) -> list[Problem]:
        tree = located_tree(text) if text else None
        return [Problem(line_of(tree, loc) if tree is not None else None, _field_path(loc), msg) for loc, msg in items]


# -- escaping ----------------------------------------------------------------------------------------------


def literal_regex(text: str) -> str:
    """PCRE for exactly this text: letters, digits and `_/:-` as they are, everything else as \\xHH bytes."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if char.isascii() and (char.isalnum() or char in "_/:-") else f"\\x{byte:02x}")
    return "".join(out)


def quote(text: str, *, variables: bool = False) -> str:
    """text as a double-quoted nginx string that nginx reads back as exactly text.

    Backslashes and quotes are escaped, tab, CR and LF written as nginx's \\t, \\r, \\n. With
    variables=True (values nginx interpolates) `$` becomes ${cg_dollar}; other control characters are
    refused by the callers before this."""
    out = []
    for char in text:
        if char in '"\\\'':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char == "$" and variables:
            out.append("${cg_dollar}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def value(text: str) -> str:
    """A literal value in a directive nginx interpolates (map values, add_header, return)."""
    return quote(text, variables=True)


def regex_key(pattern: str) -> str:
    """A map's regex source: `~` and the pattern, quoted (map sources are never interpolated)."""
    return quote("~" + pattern)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# -- the policy, compiled for nginx ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    index: int
    name: str
    rule: CorsRule


def route_regex(api: Api, method_pattern: str | None = None, domains: Sequence[str] = ()) -> str:
    """The anchored regex over "scheme host path method" that a request of this API matches (routing.Router's
    rules): its host, else its group's domains (issue 18), else any; its req_protocol as nginx's $scheme."""
    if api.host:
        host = literal_regex(api.host)
    elif domains:
        host = "(?:" + "|".join(literal_regex(d.lower()) for d in sorted(domains)) + ")"
    else:
        host = "[^ ]*"
    scheme = {"HTTP": "http", "HTTPS": "https"}.get(api.req_protocol, "https?")
    segments = parse_path(api.path)
    parts = []
    rest = False
    for kind, text in segments:
        if kind == "lit":
            parts.append("/" + literal_regex(text))
        elif kind == "param":
            parts.append("/[^/ ]+")
        else:
            parts.append("/[^ ]*")
            rest = True
    path = "".join(parts)
    if not rest:
        if api.match_mode == "SWA":
            path = path + "(?:/[^ ]*)?" if segments else "[^ ]*"
        elif not segments:
            path = "/"
    method = method_pattern or (".+" if api.method == "ANY" else literal_regex(api.method))
    return f"^{scheme} {host} {path} {method}$"


def origin_regex(rule_text: str) -> str:
    """Case-insensitive anchored PCRE admitting what an exact or wildcard allow_origin entry admits."""
    rule = parse_origin_rule(rule_text)
    assert rule.origin is not None
    origin: Origin = rule.origin
    port = "" if DEFAULT_PORTS.get(origin.scheme) == origin.port else f":{origin.port}"
    optional = f"(?::{origin.port})?" if not port else port
    host = literal_regex(origin.host)
    if rule.kind == "wildcard":
        host = rf"(?!\[)(?:{_LABEL}\.)+{host}"
    return rf"(?i)^{literal_regex(origin.scheme)}://{host}{optional}\z"


def _regex_problem(pattern: str) -> str | None:
    if not pattern.isascii() or not pattern.isprintable():
        return "only printable ASCII regexes are exported (Python and PCRE differ on the rest)"
    for construct, what in _PYTHON_ONLY:
        if re.search(construct, pattern):
            return f"uses {what}; nginx's PCRE cannot run it as Python does"
    return None


def _json_body(error: GatewayError, detail: str, request_id: bool, detail_variable: str = "") -> str:
    """responses.error_response's body as an nginx value: $request_id (and a detail variable) spliced in."""
    message = f"{error.message[:-1]}: {detail}" if detail or detail_variable else error.message
    text = json.dumps({"error_code": error.code, "error_msg": message + "<<D>>", "request_id": "<<R>>"})
    return value(text).replace("<<D>>", detail_variable).replace("<<R>>", "$request_id" if request_id else "")


@dataclass(frozen=True)
class Export:
    """What export_nginx produced: the configuration and its warnings (located)."""

    text: str
    warnings: tuple[Problem, ...]


def parse_listen(listen: str) -> str:
    """HOST:PORT for `listen`; ValueError says what is wrong."""
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})", listen)
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise ValueError(f"--listen {listen!r} is not HOST:PORT")
    return listen


def parse_upstream(upstream: str) -> tuple[str, str, str]:
    """(scheme, host:port, the Host header mitmproxy's reverse mode sends) of --upstream; ValueError says what is wrong."""
    parts = urlsplit(upstream)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"--upstream {upstream!r}: bad port") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not re.fullmatch(r"[A-Za-z0-9.-]+|[0-9a-fA-F:.]+", host):
        raise ValueError(f"--upstream {upstream!r} is not http(s)://HOST[:PORT]")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"--upstream {upstream!r}: no path, query or user (requests keep their own path)")
    port = port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, f"[{host}]:{port}" if ":" in host else f"{host}:{port}", parts.netloc


def export_nginx(
    loaded: LoadedPolicy,
    upstream: str,
    listen: str = DEFAULT_LISTEN,
    *,
    standalone: bool = False,
    headers_more: str | None = HEADERS_MORE,
    text: str | None = None,
) -> Export:
    """The policy as nginx configuration; raises ExportError (located) when nginx cannot carry it.

    headers_more: the headers-more module (sets the Server header as corsgate does), None without it;
    standalone loads it from this path. text: the policy's source, only to put line numbers on problems."""
    scheme, target, authority = parse_upstream(upstream)
    parse_listen(listen)
    problems = _Problems()
    writer = _Writer(loaded, scheme, target, authority, listen, headers_more is not None, problems)
    body = writer.http_block()
    if problems.errors:
        raise ExportError(loaded.source, problems.located(problems.errors, text))
    warnings = tuple(problems.located(problems.warnings, text))
    head = [
        f"# nginx configuration exported by scripts/cors-export from {loaded.source} (sha256 {loaded.digest}).",
        "# Do not edit: change the policy and export again. What nginx does differently is listed in the",
        "# README (\"From corsgate to production\") and below.",
        *(f"# warning: {w.render(loaded.source)}".replace("\n", " ") for w in warnings),
    ]
    if not standalone:
        return Export("\n".join(head + ["", *body]) + "\n", warnings)
    main = [
        *head, "",
        *([f"load_module {headers_more};"] if headers_more else []),
        "worker_processes 1;",
        "pid nginx.pid;",
        "error_log stderr notice;",
        "events {", "    worker_connections 1024;", "}",
        "http {",
        "    access_log off;",
        "    client_body_temp_path client_body_temp;",
        "    proxy_temp_path proxy_temp;",
        "    fastcgi_temp_path fastcgi_temp;",
        "    uwsgi_temp_path uwsgi_temp;",
        "    scgi_temp_path scgi_temp;",
        "    map_hash_bucket_size 128;",
        f"    map_hash_max_size {max(2048, 2 * writer.largest_map)};",
        "    variables_hash_max_size 2048;",
        *("    " + line if line else "" for line in body),
        "}",
    ]
    return Export("\n".join(main) + "\n", warnings)


class _Writer:
    """Builds the http-level text: maps, upstream and the server."""

    def __init__(
        self, loaded: LoadedPolicy, scheme: str, target: str, authority: str, listen: str, more: bool,
        problems: _Problems,
    ) -> None:
        self.policy = loaded.policy
        self.scheme, self.target, self.authority, self.listen, self.more = scheme, target, authority, listen, more
        self.problems = problems
        self.largest_map = 0  # entries of the largest map: standalone sizes map_hash_max_size for it
        self.request_id = self.policy.gateway.request_id
        self.rules = {
            name: _Rule(i, name, CorsRule(name, p.content)) for i, (name, p) in enumerate(self.policy.plugins.items())
            if p.type == "cors"
        }
        self.edits = {name: RespHeaderRule(name, p.content) for name, p in self.policy.plugins.items()
                      if p.type == "set_resp_headers"}
        self.api_edit: list[RespHeaderRule | None] = [
            next((self.edits[n] for n in api.plugins if n in self.edits), None) for api in self.policy.apis
        ]
        self.api_rule: list[_Rule | None] = [
            next((self.rules[n] for n in api.plugins if n in self.rules), None) for api in self.policy.apis
        ]
        apis = self.policy.apis
        self.domains = [group_domains(self.policy, api) for api in apis]
        self.order = sorted(range(len(apis)), key=lambda i: _rank(apis[i], i, self.domains[i]))
        self._check()

    # -- checks ------------------------------------------------------------------------------------------

    def _check(self) -> None:
        err, warn = self.problems.errors.append, self.problems.warnings.append

        def fits(loc: tuple[Any, ...], token: str) -> None:
            if len(token) > MAX_TOKEN:
                err((loc, f"too long for nginx: {len(token)} characters in one parameter (nginx reads at most "
                     f"{MAX_TOKEN})"))

        if self.policy.gateway.server:
            fits(("gateway", "server"), value(self.policy.gateway.server))
        if self.policy.gateway.server is not None and not self.more:
            warn((("gateway", "server"), "without nginx's headers-more module, gateway-made responses say "
                  "'Server: nginx' instead (install libnginx-mod-http-headers-more-filter)"))
        for r in self.rules.values():
            loc = ("plugins", r.name, "content")
            content = r.rule.content
            for i, pattern in enumerate(content.allow_origin_regex):
                why = _regex_problem(pattern)
                if why:
                    err(((*loc, "allow_origin_regex", i), f"regex {pattern[:60]!r}: {why}"))
                fits((*loc, "allow_origin_regex", i), regex_key(rf"^(?:{pattern})\z"))
            for i, text in enumerate(content.allow_origin):
                if parse_origin_rule(text).kind in ("exact", "wildcard"):
                    fits((*loc, "allow_origin", i), regex_key(origin_regex(text)))
            for name in ("allow_methods", "allow_headers", "expose_headers"):
                fits((*loc, name), value(",".join(getattr(content, name))))
            if r.rule.any_expose and r.rule.credentials:
                listed = [h for h in content.expose_headers if h != "*"]
                warn(((*loc, "expose_headers"), "'*' with allow_credentials: nginx cannot list a response's header "
                      f"names, so actual responses expose only {', '.join(listed) or 'nothing'}"))
            if r.rule.any_methods:
                warn(((*loc, "allow_methods"), "'*' admits methods that are not upper-case (fetch's 'patch'), "
                      "which nginx answers with 400 before any CORS header"))
            if r.rule.any_headers and r.rule.credentials:
                warn(((*loc, "allow_headers"), "'*' with allow_credentials: nginx echoes Access-Control-Request-"
                      "Headers only when it is a plain comma list of tokens without spaces (as browsers send it)"))
            if content.precedence == "gateway":
                warn(((*loc, "precedence"), "gateway: nginx removes the backend's " + ", ".join(CORS_FIELDS)
                      + "; other Access-Control-* fields pass"))
        for name, edit in self.edits.items():
            for j, (action, low, _, _) in enumerate(edit.ops):
                loc = ("plugins", name, "content", "response_headers", j)
                if low.decode() in MANAGED | {"content-type"}:
                    err(((*loc, "name"), f"{low.decode()} is set by nginx or by the exported CORS rules: nginx cannot "
                         "let a set_resp_headers plug-in edit it"))
                elif action in ("override", "delete", "append"):
                    warn(((*loc, "action"), f"{action}: nginx hides the backend's {low.decode()} on every API and puts "
                          "back only its first field where no plug-in replaces it (nginx 1.22 reads one field per "
                          "name), so duplicate fields from the backend are cut to the first"
                          + ("; append joins only that first field" if action == "append" else "")))
                elif action == "skip":
                    warn(((*loc, "action"), f"skip: nginx cannot tell an empty {low.decode()} from a missing one, "
                          "so an empty backend field gets the plug-in's field beside it"))
        for i, api in enumerate(self.policy.apis):
            fits(("apis", i, "path"), regex_key(route_regex(api, domains=self.domains[i])))
            if api.req_protocol == "HTTPS":
                warn((("apis", i, "req_protocol"), "HTTPS: the exported server listens on plain HTTP, so this API "
                      "never matches there (as corsgate answers plain HTTP); put a TLS listener in front to reach it"))
            backend = api.backend
            if backend.type != "mock":
                continue
            loc = ("apis", i, "backend")
            fits((*loc, "body"), value(backend.body))
            if backend.status < 200 or backend.status in SPECIAL_STATUS:
                err(((*loc, "status"), f"nginx's `return` cannot send status {backend.status} with a body "
                     "(1xx, redirects and nginx's own codes)"))
            if _CONTROL.search(backend.body):
                err(((*loc, "body"), "control characters other than tab, CR and LF cannot be written to nginx"))
            for name, val in backend.headers.items():
                fits((*loc, "headers", name), value(val))
                if name.lower() in MANAGED:
                    err(((*loc, "headers", name), f"{name} is set by nginx or by the exported CORS rules"))

    # -- text --------------------------------------------------------------------------------------------

    def http_block(self) -> list[str]:
        out: list[str] = []
        out += self._basics()
        out += self._routing()
        out += self._decision()
        out += self._origins()
        out += self._fields()
        out += self._server()
        return out

    def _map(self, source: str, variable: str, entries: Iterable[tuple[str, str]], default: str | None = None
             ) -> list[str]:
        entries = list(entries)
        self.largest_map = max(self.largest_map, len(entries))
        lines = [f"map {source} ${variable} {{"]
        if default is not None:
            lines.append(f"    default {default};")
        lines += [f"    {key} {val};" for key, val in entries]
        return lines + ["}", ""]

    def _basics(self) -> list[str]:
        return [
            "# -- corsgate: request facts -----------------------------------------------------------",
            'geo $cg_dollar { default "$"; }',
            f"upstream cg_upstream {{ server {self.target}; keepalive 32; }}",
            *self._map("$request_uri", "cg_path", [(quote("~^(?<cg_path_m>[^?]*)"), "$cg_path_m")]),
            *self._map("$http_origin", "cg_has_origin", [('""', "0")], "1"),
            *self._map("$http_access_control_request_method", "cg_has_acrm", [('""', "0")], "1"),
            *self._map("$http_authorization", "cg_has_auth", [('""', "0")], "1"),
            *self._map("$http_upgrade", "cg_connection", [('""', '""')], "upgrade"),
            # A preflight: OPTIONS (case-sensitive, as corsgate) with Origin and Access-Control-Request-Method.
            *self._map('"$request_method:$cg_has_origin$cg_has_acrm"', "cg_preflight",
                       [(regex_key("^OPTIONS:11$"), "1")], "0"),
            *self._map("$http_access_control_request_method", "cg_acrm_token",
                       [(regex_key(f"^{TCHAR}+$"), "$http_access_control_request_method")], '""'),
            *self._map("$http_access_control_request_headers", "cg_acrh_echo",
                       [(regex_key(f"^{TCHAR}+(?:,{TCHAR}+)*$"), "$http_access_control_request_headers")], '""'),
            *self._map("$http_access_control_request_private_network", "cg_pna",
                       [(regex_key(r"(?i)^\s*true\s*$"), "true")], '""'),
            # The refused origin in the 403 body, only where it needs no JSON escaping.
            *self._map("$http_origin", "cg_origin_json",
                       [(regex_key(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$"), "$http_origin")], '"(not shown)"'),
        ]

    def _routing(self) -> list[str]:
        apis = self.policy.apis
        out = ["# -- corsgate: which API (DESIGN 4.1: first regex that matches, in corsgate's precedence) ----"]
        for source, variable, method in (
            ('"$scheme $host $cg_path $request_method"', "cg_route", None),
            ('"$scheme $host $cg_path OPTIONS"', "cg_route_options", "OPTIONS"),
            ('"$scheme $host $cg_path $http_access_control_request_method"', "cg_route_acrm", None),
        ):
            entries = []
            for i in self.order:
                api = apis[i]
                if method and api.method not in (method, "ANY"):
                    continue
                entries.append((regex_key(route_regex(api, domains=self.domains[i])), str(i)))
            out += self._map(source, variable, entries, '""')
        # cors.Engine._preflight: the API routed by the requested method answers when it has a CORS plug-in,
        # unless an OPTIONS API routed for the path is more specific (precedence without method and order).
        with_rule = [i for i, r in enumerate(self.api_rule) if r is not None]
        out += self._map("$cg_route_acrm", "cg_acrm_rule", [(f'"{i}"', str(i)) for i in with_rule], '""')
        out += self._map("$cg_acrm_rule", "cg_pf_default", [('""', "$cg_route_options")], "$cg_acrm_rule")
        pairs = []
        # as cors._more_specific: without method and file order
        ranks = [_rank(a, 0, d)[:-2] for a, d in zip(apis, self.domains)]
        for a, api in enumerate(apis):
            if api.method != "OPTIONS":
                continue
            pairs += [(f'"{a}:{b}"', str(a)) for b in with_rule if b != a and ranks[a] < ranks[b]]
        out += self._map('"$cg_route_options:$cg_route_acrm"', "cg_pf", pairs, "$cg_pf_default")
        out += self._map("$cg_preflight", "cg_api", [("1", "$cg_pf")], "$cg_route")
        return out

    def _decision(self) -> list[str]:
        """$cg_plan (how to decorate) and $cg_act (what to answer) per (preflight, origin, API, ...)."""
        plans: list[tuple[str, str]] = []
        acts: list[tuple[str, str]] = []
        for i, api in enumerate(self.policy.apis):
            rule = self.api_rule[i]
            for pfo in ("00", "01", "11"):
                plan = ""
                if pfo != "00":
                    if rule is not None:
                        plan = f"{'q' if pfo == '11' else 'p'}{rule.index}"
                    elif api.cors:
                        plan = "a" if pfo == "11" and api.method == "OPTIONS" else "s"
                if plan:
                    plans.append((f'"{pfo}:{i}"', plan))
                for allowed in (("", "1") if plan[:1] in ("p", "q") else ("",)):
                    for auth in ("0", "1"):
                        act = self._act(api, rule, pfo, allowed, auth)
                        if act:
                            acts.append((f'"{pfo}:{i}:{allowed}:{auth}"', act))
        if self.policy.gateway.unmatched == "reject":
            acts += [(f'"{pfo}:::{auth}"', "404") for pfo in ("00", "01", "11") for auth in ("0", "1")]
        return [
            "# -- corsgate: the decision (cors.Engine.decide) -------------------------------------------",
            *self._map('"$cg_preflight$cg_has_origin:$cg_api"', "cg_plan", plans, '""'),
            *self._map("$cg_plan", "cg_allowed",
                       [(f"{k}{r.index}", f"$cg_origin_{r.index}") for r in self.rules.values() for k in "pq"], '""'),
            *self._map('"$cg_preflight$cg_has_origin:$cg_api:$cg_allowed:$cg_has_auth"', "cg_act", acts, '""'),
        ]

    @staticmethod
    def _act(api: Api, rule: _Rule | None, pfo: str, allowed: str, auth: str) -> str:
        if pfo == "11" and rule is not None:  # a CORS plug-in's preflight: no auth check (cors._plugin_preflight)
            if not allowed:
                return "403"
            return "pf" if rule.rule.content.preflight == "answer" else ""
        if api.auth != "none" and auth == "0":
            return "401i" if api.auth == "iam" else "401a"
        if api.backend.type == "mock":
            return f"m{api.backend.status}"
        return ""

    def _origins(self) -> list[str]:
        out = ["# -- corsgate: origins per CORS plug-in (origins.OriginMatcher) ---------------------------"]
        for r in self.rules.values():
            c = r.rule.content
            entries = [(regex_key(r"^null\z"), "1" if c.allow_null_origin else '""'),
                       (regex_key(rf"^(?!(?i:{VALID_ORIGIN})\z)"), '""')]
            for text in c.allow_origin:
                if parse_origin_rule(text).kind in ("exact", "wildcard"):
                    entries.append((regex_key(origin_regex(text)), "1"))
            entries += [(regex_key(rf"^(?:{p})\z"), "1") for p in c.allow_origin_regex]
            out += [f"# plug-in {r.name!r}".replace("\n", " ")]
            out += self._map("$http_origin", f"cg_origin_{r.index}", entries, "1" if r.rule.any_origin else '""')
        return out

    def _fields(self) -> list[str]:
        """The value of every header the gateway may set, from $cg_out (the plan that applies) and the backend's."""
        apply: list[tuple[str, str]] = [('"s:0"', "s"), ('"a:0"', "a")]
        out_map: list[tuple[str, str]] = [('"s:"', "s"), ('"a:"', "a")]
        strip: list[tuple[str, str]] = []
        values: dict[str, list[tuple[str, str]]] = {f: [] for f in (*CORS_FIELDS, "Vary")}
        apig = dict(APIG_PREFLIGHT_HEADERS)
        for name, val in apig.items():
            values[name].append(("a", value(val)))
        values["Access-Control-Allow-Origin"].append(("s", '"*"'))
        extra: list[str] = []
        for r in self.rules.values():
            rule, c, n = r.rule, r.rule.content, r.index
            for k in "pq":
                apply.append((f'"{k}{n}:0"', f"{k}{n}"))
                if c.precedence == "gateway":
                    apply.append((f'"{k}{n}:1"', f"{k}{n}"))
                    strip.append((f"{k}{n}", "1"))
                out_map += [(f'"{k}{n}:1"', f"{k}{n}"), (f'"{k}{n}:"', f"{k}{n}x")]
            acao = "$http_origin" if rule.depends_on_origin else '"*"'
            for k in ("p", "q"):
                values["Access-Control-Allow-Origin"].append((f"{k}{n}", acao))
                if rule.credentials:
                    values["Access-Control-Allow-Credentials"].append((f"{k}{n}", '"true"'))
            if rule.any_methods and rule.credentials:
                extra += self._map("$cg_acrm_token", f"cg_acam_{n}", [('""', value(rule.methods))], "$cg_acrm_token")
                values["Access-Control-Allow-Methods"].append((f"q{n}", f"$cg_acam_{n}"))
            elif rule.methods:
                values["Access-Control-Allow-Methods"].append((f"q{n}", value(rule.methods)))
            if rule.any_headers and rule.credentials:
                values["Access-Control-Allow-Headers"].append((f"q{n}", "$cg_acrh_echo"))
            elif rule.headers:
                values["Access-Control-Allow-Headers"].append((f"q{n}", value(rule.headers)))
            if rule.max_age is not None:
                values["Access-Control-Max-Age"].append((f"q{n}", value(rule.max_age)))
            if c.allow_private_network:
                values["Access-Control-Allow-Private-Network"].append((f"q{n}", "$cg_pna"))
            if rule.any_expose and rule.credentials:
                listed = ",".join(h for h in c.expose_headers if h != "*")
                if listed:
                    values["Access-Control-Expose-Headers"].append((f"p{n}", value(listed)))
            elif rule.expose:
                values["Access-Control-Expose-Headers"] += [(f"p{n}", value(rule.expose)), (f"q{n}", value(rule.expose))]
            if rule.depends_on_origin:
                more = rule.credentials and (rule.any_methods or rule.any_headers)
                tokens = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" if more else "Origin"
                values["Vary"] += [(f"p{n}", '"Origin"'), (f"p{n}x", '"Origin"'), (f"q{n}", f'"{tokens}"'),
                                   (f"q{n}x", '"Origin"')]
        out = [
            "# -- corsgate: response fields (cors.response_edit) -----------------------------------------",
            *self._map("$upstream_http_access_control_allow_origin", "cg_theirs", [('""', "0")], "1"),
            *self._map('"$cg_plan:$cg_theirs"', "cg_applied", apply, '""'),
            *self._map('"$cg_applied:$cg_allowed"', "cg_out", out_map, '""'),
            *self._map("$cg_plan", "cg_strip", strip, "0"),
            *extra,
        ]
        for name in CORS_FIELDS:
            var = _var(name)
            out += self._map("$cg_out", f"cg_gw_{var}", values[name], '""')
            out += self._map("$cg_strip", f"cg_up_{var}", [("1", '""')], f"$upstream_http_{var}")
            out += self._map(f"$cg_gw_{var}", f"cg_{var}", [('""', f"$cg_up_{var}")], f"$cg_gw_{var}")
        # Vary: merged, never replaced; nothing when the backend's says * or already names Origin.
        out += self._map("$cg_out", "cg_gw_vary", values["Vary"], '""')
        out += self._map("$upstream_http_vary", "cg_vary_seen",
                         [(regex_key(r"(?:^|,)\s*\*\s*(?:,|$)"), "star"),
                          (regex_key(r"(?i)(?:^|,)\s*origin\s*(?:,|$)"), "origin")], '""')
        out += self._map('"$cg_vary_seen:$cg_gw_vary"', "cg_vary", [
            (regex_key("^star:"), '""'), (regex_key("^origin:Origin$"), '""'),
            (regex_key("^origin:Origin, (?<cg_vary_m>.*)$"), "$cg_vary_m"),
            (regex_key("^[a-z]*:(?<cg_vary_a>.*)$"), "$cg_vary_a"),
        ], '""')
        # X-Request-Id on every response of a matched API (and the reject 404); otherwise the backend's.
        if self.request_id:
            out += self._map('"$cg_api:$cg_act"', "cg_rid", [(regex_key("^:404$"), "$request_id"),
                                                              (regex_key("^:"), "$upstream_http_x_request_id")],
                             "$request_id")
        # Gateway-made answers: Server (with headers-more), Content-Type, mock headers and bodies.
        server = self.policy.gateway.server
        out += self._map("$cg_made", "cg_server", [("1", value(server) if server else '""')], "$upstream_http_server")
        ct: list[tuple[str, str]] = [(regex_key("^1:(?:40|50)"), '"application/json"')]
        mock_headers: dict[str, list[tuple[str, str]]] = {}
        bodies: list[tuple[str, str]] = []
        names: dict[tuple[str, int], str] = {}
        for i, api in enumerate(self.policy.apis):
            if api.backend.type != "mock":
                continue
            key = f'"1:m{api.backend.status}:{i}"'
            bodies.append((f'"{i}"', value(api.backend.body)))
            seen: dict[str, int] = {}
            for name, val in _mock_fields(api, self.api_edit[i]):
                if name.lower() == "content-type":
                    ct.append((key, value(val)))
                    continue
                slot = (name.lower(), seen.get(name.lower(), 0))  # a plug-in's `add` makes a second field
                seen[name.lower()] = slot[1] + 1
                names.setdefault(slot, name)
                mock_headers.setdefault(slot, []).append((key, value(val)))
        out += self._map('"$cg_made:$cg_err$cg_act:$cg_api"', "cg_content_type", ct, '""')
        self.mock_names: list[tuple[str, str]] = []
        for k, (slot, entries) in enumerate(sorted(mock_headers.items())):
            self.mock_names.append((names[slot], f"cg_mock_{k}"))
            out += self._map('"$cg_made:$cg_err$cg_act:$cg_api"', f"cg_mock_{k}", entries, '""')
        out += self._map("$cg_api", "cg_mock_body", bodies, '""')
        return out + self._edits()

    def _edits(self) -> list[str]:
        """set_resp_headers on upstream answers (resp_headers.RespHeaderRule): per header name, a field that
        replaces the backend's (override, delete, append, and skip or add where the name is hidden) and one more
        for `add`, chosen by $cg_rh, the API's plug-in while the answer is the upstream's ($cg_made empty).
        Mocks get their plug-in's edit at export time (_mock_fields); gateway-made errors get none."""
        self.edit_headers: list[str] = []
        self.edit_hidden: list[str] = []
        if not self.edits:
            return []
        index = {name: str(k) for k, name in enumerate(self.edits)}
        active = [(f'":{i}"', index[e.name]) for i, e in enumerate(self.api_edit)
                  if e is not None and self.policy.apis[i].backend.type != "mock"]
        out = ["# -- corsgate: set_resp_headers plug-ins (resp_headers.RespHeaderRule) ------------------",
               *self._map('"$cg_made:$cg_api"', "cg_rh", active, '""')]
        ops: dict[bytes, list[tuple[str, str, str, str]]] = {}  # lower name -> (plug-in index, action, name, value)
        for name, edit in self.edits.items():
            for action, low, written, val in edit.ops:
                ops.setdefault(low, []).append((index[name], action, written.decode("utf-8", "surrogateescape"),
                                                val.decode("utf-8", "surrogateescape")))
        for k, (low, entries) in enumerate(sorted(ops.items())):
            var, name = _var(low.decode()), entries[0][2]
            upstream = f"$upstream_http_{var}"
            hidden = any(action in ("override", "delete", "append") for _, action, _, _ in entries)
            keep = upstream if hidden else '""'
            replace: list[tuple[str, str]] = []
            more: list[tuple[str, str]] = []
            for n, action, _, val in entries:
                if action == "override":
                    replace.append((f'"{n}"', value(val)))
                elif action == "delete":
                    replace.append((f'"{n}"', '""'))
                elif action in ("append", "skip"):
                    joined = f'"${{upstream_http_{var}}},{value(val)[1:]}' if action == "append" else keep
                    out += self._map(upstream, f"cg_rh_{n}_{k}", [('""', value(val))], joined)
                    replace.append((f'"{n}"', f"$cg_rh_{n}_{k}"))
                else:  # add
                    more.append((f'"{n}"', value(val)))
            out += self._map("$cg_rh", f"cg_rh_set_{k}", replace, keep)
            self.edit_headers.append(f"add_header {name} $cg_rh_set_{k} always;")
            if more:
                out += self._map("$cg_rh", f"cg_rh_add_{k}", more, '""')
                self.edit_headers.append(f"add_header {name} $cg_rh_add_{k} always;")
            if hidden:
                self.edit_hidden.append(name)
        return out

    def _server(self) -> list[str]:
        rid = self.request_id
        bodies = {
            "401a": _json_body(APP_AUTH_MISSING, "", rid), "401i": _json_body(IAM_AUTH_MISSING, "", rid),
            "403": _json_body(ORIGIN_NOT_ALLOWED, "", rid, "$cg_origin_json"),
            "404": _json_body(API_NOT_FOUND, "", rid),
        }
        host = self.target
        unavailable = _json_body(BACKEND_UNAVAILABLE, f"{host}: connection failed", rid)
        timeout = _json_body(BACKEND_TIMEOUT, f"no connection to {host} within {CONNECT_TIMEOUT} s", rid)
        statuses = sorted({a.backend.status for a in self.policy.apis if a.backend.type == "mock"})
        headers = [f"add_header {name} $cg_{_var(name)} always;" for name in CORS_FIELDS]
        headers.append("add_header Vary $cg_vary always;")
        if rid:
            headers.append("add_header X-Request-Id $cg_rid always;")
        headers.append("add_header Content-Type $cg_content_type always;")
        headers += [f"add_header {name} ${var} always;" for name, var in self.mock_names]
        headers += self.edit_headers
        hidden = [*CORS_FIELDS, *(["X-Request-Id"] if rid else [])]
        lines = [
            "# -- corsgate: the gateway -----------------------------------------------------------------",
            "server {",
            f"    listen {self.listen};",
            "    server_tokens off;",
            '    default_type "";  # gateway-made answers get their Content-Type from $cg_content_type',
            '    set $cg_made "";',
            '    set $cg_err "";',
            *(f"    {h}" for h in headers),
            *(['    more_set_headers "Server: $cg_server";'] if self.more else []),
            *(f"    proxy_hide_header {name};" for name in [*hidden, *self.edit_hidden]),
            "    proxy_pass_header Server;",
            "    proxy_http_version 1.1;",
            f"    proxy_set_header Host {value(self.authority)};  # as mitmproxy's reverse mode sends it",
            "    proxy_set_header Upgrade $http_upgrade;",
            "    proxy_set_header Connection $cg_connection;",
            f"    proxy_connect_timeout {CONNECT_TIMEOUT}s;",
            "    proxy_max_temp_file_size 0;",
            "    proxy_request_buffering off;",
            "    client_max_body_size 0;",
            "",
            "    location / {",
            "        error_page 502 503 = @cg_unavailable;",
            "        error_page 504 = @cg_timeout;",
            "        if ($cg_act = pf) { set $cg_made 1; return 200 \"\"; }",
            *(f"        if ($cg_act = {act}) {{ set $cg_made 1; return {act[:3]} {body}; }}"
              for act, body in bodies.items()),
            *(f"        if ($cg_act = m{s}) {{ set $cg_made 1; return {s} $cg_mock_body; }}" for s in statuses),
            f"        proxy_pass {self.scheme}://cg_upstream;",
            "    }",
            "",
            "    location @cg_unavailable {",
            '        if ($cg_api = "") { return 502; }',
            "        set $cg_made 1;",
            "        set $cg_err 502;",
            f"        return 502 {unavailable};",
            "    }",
            "",
            "    location @cg_timeout {",
            '        if ($cg_api = "") { return 504; }',
            "        set $cg_made 1;",
            "        set $cg_err 504;",
            f"        return 504 {timeout};",
            "    }",
            "}",
        ]
        return lines


def _mock_fields(api: Api, edit: RespHeaderRule | None) -> list[tuple[str, str]]:
    """A mock's header fields after its API's set_resp_headers edit, as gateway.made_fields makes them."""
    fields = [(raw(k), raw(v)) for k, v in api.backend.headers.items()]
    edited = edit.apply(fields) if edit is not None else fields
    return [(k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape")) for k, v in edited]


def _rank(api: Api, index: int, domains: Sequence[str] = ()) -> tuple[int, ...]:
    """routing.precedence of an API: the order its route regexes are written in (a group's domains make it
    host-specific, as routing.Router ranks it)."""
    return precedence(api.host or (min(domains) if domains else None), api.method, api.path, api.match_mode, index)


def _var(name: str) -> str:
    """nginx's variable suffix for a header name ($upstream_http_<this>)."""
    return name.lower().replace("-", "_")
