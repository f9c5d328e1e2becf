"""Lint rules for policy files (DESIGN §5, `scripts/cors-lint`): what loads but will not do what was meant.

The loader (policy.py) decides what is valid; its errors come back here as findings in the same shape.
The rules below run on a policy that loaded, and name what a browser, APIG or an attacker would make of
it. Routing questions are answered by the real Router, never by a second reading of the precedence rules.

A finding can be silenced where a policy means it: `# cors-lint: ignore[rule-id] why` on the finding's
line, or on a comment line right above it. Loader errors cannot be silenced: such a policy never runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from addon.tools.backtracking import backtracks
from addon.core.origins import DEFAULT_PORTS, parse_origin_rule
from addon.core.policy import (
    METHODS,
    group_domains,
    Api,
    CorsContent,
    LoadedPolicy,
    Policy,
    PolicyError,
    line_of,
    load_policy,
    located_tree,
    parse_policy,
)
from addon.core.routing import Router, parse_path, route_signature
from addon.verdict import blocked_as_mixed_content, chromium, firefox, webkit

Severity = Literal["error", "warning"]

# rule id -> (severity, what it finds); the README and `cors-lint --rules` print this table.
RULES: dict[str, tuple[Severity, str]] = {
    "invalid": ("error", "the loader rejects a value (type, range, syntax, unknown plug-in)"),
    "unknown-field": ("error", "a field the format does not have, with the likely intended name"),
    "origin-format": ("error", "an allow_origin entry that is not scheme://host[:port] or a whole-label wildcard"),
    "routing-tie": ("error", "two APIs that match exactly the same requests"),
    "credentials-wildcard": ("warning", "allow_origin '*' with allow_credentials: every site reads with cookies"),
    "origin-trailing-slash": ("warning", "an origin written with a trailing slash browsers never send"),
    "origin-default-port": ("warning", "an origin written with its scheme's default port browsers never send"),
    "origin-wildcard-broad": ("error", "a wildcard origin over a suffix anyone can register under"),
    "origin-regex-unanchored": ("warning", "an allow_origin_regex without ^...$ (a search elsewhere)"),
    "origin-regex-broad": ("error", "an allow_origin_regex that admits more hosts than it names"),
    "origin-regex-backtracking": ("error", "an allow_origin_regex whose nested repeats can stall the proxy"),
    "max-age-over-cap": ("warning", "max_age above Chromium's 7200 s (and Firefox's 86400 s) cap"),
    "authorization-under-wildcard": ("warning", "allow_headers '*' expected to cover Authorization"),
    "method-not-in-plugin": ("error", "an API bound to a CORS plug-in whose allow_methods lacks its method"),
    "plugin-path-conflict": ("error", "two CORS plug-ins on one path in one group"),
    "options-api-with-plugin": ("error", "an OPTIONS API and a CORS plug-in on the same path"),
    "shadowed-api": ("warning", "an API no request can reach: better-ranked APIs take all of its requests"),
    "origin-admits-none": ("warning", "a CORS plug-in whose allow lists admit no origin at all"),
    "resp-header-not-exposed": ("warning", "a header a set_resp_headers plug-in adds that the API's CORS does not expose"),
    "preflight-unanswered": ("warning", "a CORS-enabled API with no OPTIONS API or CORS plug-in in its group and protocol"),
    "options-api-unmatched": ("warning", "an OPTIONS API whose group or protocol matches no CORS-enabled API"),
    # issue 19: where the browser engines differ
    "max-age-over-safari-cap": ("warning", "max_age above Safari's 600 s cap (up to Chromium's 7200 s)"),
    "wildcard-uncached-in-firefox": ("warning", "a literal '*' in allow_methods/allow_headers: Firefox preflights "
                                     "every request"),
    "https-origin-to-http-local-api": ("warning", "https origins allowed on an API on a loopback or private host: "
                                       "Safari blocks those pages' http:// calls as mixed content"),
}
_PROTOCOLS = {"HTTP": (False,), "HTTPS": (True,), "BOTH": (False, True)}
# Response headers a page reads cross-origin without Access-Control-Expose-Headers (Fetch: CORS-safelisted).
SAFELISTED_RESPONSE = frozenset({"cache-control", "content-language", "content-length", "content-type", "expires",
                                 "last-modified", "pragma"})

CHROMIUM_MAX_AGE = chromium.MAX_AGE
FIREFOX_MAX_AGE = firefox.MAX_AGE
SAFARI_MAX_AGE = webkit.MAX_AGE
# Suffixes under which anyone can get a host: a wildcard over one admits strangers' sites. Examples only;
# the Public Suffix List (https://publicsuffix.org) is the full story.
SHARED_SUFFIXES = frozenset({
    "co.uk", "org.uk", "com.au", "com.cn", "com.br", "co.jp", "co.in", "github.io", "gitlab.io",
    "herokuapp.com", "vercel.app", "netlify.app", "pages.dev", "workers.dev", "web.app", "firebaseapp.com",
    "appspot.com", "azurewebsites.net", "cloudfront.net", "s3.amazonaws.com", "ngrok.io", "ngrok-free.app",
})  # fmt: skip
_PROBE_HOST = "cors-lint-probe.invalid"  # a host no API names: what an any-host API sees
_APIG_METHODS = tuple(m for m in METHODS if m != "ANY")
_SUPPRESS_RE = re.compile(r"#\s*cors-lint:\s*ignore\[([A-Za-z0-9_, -]+)\]")
_SUGGESTION_RE = re.compile(r"did you mean '([^']+)'")
_QUANTIFIER_RE = re.compile(r"[*+?]|\{\d*(?:,\d*)?\}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result: where, how bad, why, and what to do."""

    severity: Severity
    rule: str
    file: str
    line: int | None
    field: str
    message: str
    fix: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        head = f"{where}: {self.severity}[{self.rule}]: {self.field or '(top level)'}"
        return f"{head}: {self.message}\n    fix: {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Issue:
    rule: str
    loc: tuple[Any, ...]
    message: str
    fix: str


def lint_path(path: str | Path) -> list[Finding]:
    """Load and lint one policy file."""
    try:
        loaded = load_policy(path)
    except PolicyError as e:
        return _loader_findings(e)
    return _lint_loaded(loaded, Path(path).read_text(encoding="utf-8"))


def lint(data: bytes | str, source: str = "<policy>") -> list[Finding]:
    """Load and lint policy text."""
    try:
        loaded = parse_policy(data, source)
    except PolicyError as e:
        return _loader_findings(e)
    return _lint_loaded(loaded, data.decode("utf-8") if isinstance(data, bytes) else data)


def _lint_loaded(loaded: LoadedPolicy, text: str) -> list[Finding]:
    tree = located_tree(text)
    lines = text.splitlines()
    findings = []
    for issue in _issues(loaded.policy):
        line = line_of(tree, issue.loc)
        if not _suppressed(lines, line, issue.rule):
            severity = RULES[issue.rule][0]
            field = _field(issue.loc)
            findings.append(Finding(severity, issue.rule, loaded.source, line, field, issue.message, issue.fix))
    return sorted(findings, key=lambda f: (f.line or 0, f.rule, f.field))


def _loader_findings(error: PolicyError) -> list[Finding]:
    """The loader's problems, classified into rule ids, with a fix each."""
    out = []
    for problem in error.problems:
        suggestion = _SUGGESTION_RE.search(problem.message)
        if problem.message.startswith("unknown field"):
            rule = "unknown-field"
            fix = f"rename it to {suggestion.group(1)!r}" if suggestion else "remove it (see policies/schema.json)"
        elif suggestion:
            rule, fix = "invalid", f"write {suggestion.group(1)!r}"
        elif " ties with API " in problem.message:
            rule, fix = "routing-tie", "change the host, method, path or match_mode of one of them, or remove one"
        elif problem.field.endswith("allow_origin"):
            rule = "origin-format"
            fix = "write scheme://host[:port] (https://app.example.com) or a wildcard label (https://*.example.com)"
        else:
            rule, fix = "invalid", "correct the value as the message says (policies/schema.json describes every field)"
        out.append(Finding("error", rule, error.file, problem.line, problem.field, problem.message, fix))
    return out


def _suppressed(lines: Sequence[str], line: int | None, rule: str) -> bool:
    """Is the rule silenced on this line, or by a comment line right above it?"""
    if line is None:
        return False
    for number in (line, line - 1):
        if not 1 <= number <= len(lines):
            continue
        text = lines[number - 1]
        m = _SUPPRESS_RE.search(text)
        on_it = number == line or text.lstrip().startswith("#")
        if m and on_it and rule in {r.strip() for r in m.group(1).split(",")}:
            return True
    return False


def _field(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


# -- the rules ---------------------------------------------------------------------------------------


def _issues(policy: Policy) -> Iterator[_Issue]:
    for name, plugin in policy.plugins.items():
        if plugin.type == "cors":
            yield from _content_issues(("plugins", name, "content"), plugin.content)
    yield from _binding_issues(policy)
    yield from _shadowed(policy)
    yield from _unexposed_headers(policy)
    yield from _group_and_protocol(policy)
    yield from _mixed_content_issues(policy)


def _content_issues(loc: tuple[Any, ...], content: CorsContent) -> Iterator[_Issue]:
    if "*" in content.allow_origin and content.allow_credentials:
        yield _Issue(
            "credentials-wildcard", (*loc, "allow_origin"),
            "with allow_credentials, corsgate answers '*' by echoing the request's Origin, so every website a user "
            "visits can read these responses with the user's cookies (a browser refuses a literal '*' there)",
            "list the origins that need credentials, or set allow_credentials: false",
        )
    if content.admits_no_origin:
        yield _Issue(
            "origin-admits-none", loc,
            "allow_origin and allow_origin_regex are empty and allow_null_origin is off: no origin passes, so "
            "every preflight gets the 403 and no actual response gets CORS headers (no cross-origin caller)",
            "list the callers in allow_origin (https://app.example.com) or allow_origin_regex "
            "(^https://pr-[0-9]+\\.preview\\.example\\.com$); if no caller is meant, silence this rule here",
        )
    for i, entry in enumerate(content.allow_origin):
        yield from _origin_issues((*loc, "allow_origin", i), entry)
    for i, pattern in enumerate(content.allow_origin_regex):
        yield from _regex_issues((*loc, "allow_origin_regex", i), pattern)
    if content.max_age is not None and content.max_age > CHROMIUM_MAX_AGE:
        beyond = (f"Firefox caps it at {FIREFOX_MAX_AGE} s and APIG allows at most {FIREFOX_MAX_AGE}"
                  if content.max_age > FIREFOX_MAX_AGE else f"Firefox at {FIREFOX_MAX_AGE} s")
        yield _Issue(
            "max-age-over-cap", (*loc, "max_age"),
            f"max_age {content.max_age} is sent as configured, but Chromium caches a preflight for at most "
            f"{CHROMIUM_MAX_AGE} s ({beyond}, Safari at {SAFARI_MAX_AGE} s), so browsers ask again sooner than it says",
            f"set max_age: {CHROMIUM_MAX_AGE} or less",
        )
    yield from _engine_issues(loc, content)
    names = {h.lower() for h in content.allow_headers}
    if "*" in names and "authorization" not in names and not content.allow_credentials:
        yield _Issue(
            "authorization-under-wildcard", (*loc, "allow_headers"),
            "'*' never covers Authorization under the Fetch Standard: Chromium 156 and Safari still let it pass, "
            "Firefox warns that it will stop, browsers that follow the standard refuse the preflight of a request "
            "that sends it",
            "list Authorization by name next to the '*' (allow_headers: '*,Authorization')",
        )


def _engine_issues(loc: tuple[Any, ...], content: CorsContent) -> Iterator[_Issue]:
    """Where the engines differ (issue 19): Safari's short preflight cache, Firefox's uncached '*'."""
    if content.max_age is not None and SAFARI_MAX_AGE < content.max_age <= CHROMIUM_MAX_AGE:
        yield _Issue(
            "max-age-over-safari-cap", (*loc, "max_age"),
            f"max_age {content.max_age} is sent as configured, but Safari caches a preflight for at most "
            f"{SAFARI_MAX_AGE} s, so Safari users' pages preflight again every {SAFARI_MAX_AGE // 60} minutes",
            f"set max_age: {SAFARI_MAX_AGE} if Safari's cache should match the others', or silence this where "
            "the longer cache in Chrome and Firefox is what is meant",
        )
    # With credentials corsgate echoes the request's method and headers; without, it sends the '*' itself.
    wildcards = [f for f in ("allow_methods", "allow_headers") if "*" in getattr(content, f)]
    if wildcards and not content.allow_credentials and content.max_age != 0:
        yield _Issue(
            "wildcard-uncached-in-firefox", (*loc, wildcards[0]),
            f"'*' in {' and '.join(wildcards)} is sent literally, and Firefox never caches a preflight answered "
            "with a literal '*': every non-simple request from Firefox is preceded by a preflight",
            f"list the methods and headers the pages use by name in {' and '.join(wildcards)}",
        )


def _mixed_content_issues(policy: Policy) -> Iterator[_Issue]:
    """APIs on a loopback or private host whose CORS plug-in admits https pages: Safari never lets those
    pages reach the API over http:// (mixed content), whatever the CORS answer."""
    for i, api in enumerate(policy.apis):
        name = _cors_plugin(policy, api.plugins)
        if name is None or api.host is None or not blocked_as_mixed_content("https://x", "http", api.host):
            continue
        allowed = policy.plugins[name].content.allow_origin
        https = [entry for entry in allowed if entry == "*" or entry.startswith("https://")]
        if https:
            yield _Issue(
                "https-origin-to-http-local-api", ("apis", i, "host"),
                f"API {api.name!r} is on {api.host}, a loopback or private host, and plug-in {name!r} allows "
                f"{https[0]!r}: if the gateway serves it over http://, Safari blocks those https pages' requests as "
                "mixed content before CORS (Chrome and Firefox allow loopback), and nothing reaches the gateway",
                "serve the gateway over https:// for https pages, or call it from an http:// page in development",
            )


def _origin_issues(loc: tuple[Any, ...], entry: str) -> Iterator[_Issue]:
    rule = parse_origin_rule(entry)  # the loader already accepted it
    if rule.origin is None:
        return
    if entry.endswith("/"):
        yield _Issue(
            "origin-trailing-slash", loc,
            f"origin {entry!r} ends with '/', which an Origin header never has; corsgate drops it, "
            "APIG and other gateways compare the text and never match",
            f"write {entry.rstrip('/')!r}",
        )
    port = re.search(r":(\d+)/?$", entry)
    if port and int(port.group(1)) == DEFAULT_PORTS.get(rule.origin.scheme):
        bare = entry[: port.start()]
        yield _Issue(
            "origin-default-port", loc,
            f"origin {entry!r} names {rule.origin.scheme}'s default port, which an Origin header never carries; "
            "corsgate canonicalises it, other gateways compare the text and never match",
            f"write {bare!r}",
        )
    suffix = rule.origin.host
    if rule.kind == "wildcard" and ("." not in suffix or suffix in SHARED_SUFFIXES):
        yield _Issue(
            "origin-wildcard-broad", loc,
            f"{entry!r} admits every site under {suffix!r}, a suffix anyone can register a host under",
            "name your own domain under it (https://*.app.example.com) or list the exact origins",
        )


def _regex_issues(loc: tuple[Any, ...], pattern: str) -> Iterator[_Issue]:
    if backtracks(pattern):
        yield _Issue(
            "origin-regex-backtracking", loc,
            f"'{pattern}' repeats a part that can itself match the same text in several ways: on a long Origin "
            "that almost matches, the regex engine tries exponentially many ways with the proxy's event loop "
            "stopped, and any client can send one",
            "give each repeated part a separator its inner repeat cannot match, as the dot in "
            "^https://([a-z0-9-]+\\.)*example\\.com$",
        )
    tokens = _regex_tokens(pattern)
    top_alternation = any(kind == "|" and depth == 0 for kind, _, depth in tokens)
    if not tokens or tokens[0][0] != "^" or tokens[-1][0] != "$" or top_alternation:
        yield _Issue(
            "origin-regex-unanchored", loc,
            f"'{pattern}' is not anchored as a whole: corsgate matches it in full, but nginx and most gateways "
            "search with it, where it also admits origins that merely contain a match",
            "wrap it as ^(...)$",
        )
    for i, (kind, text, _) in enumerate(tokens):
        after = tokens[i + 1] if i + 1 < len(tokens) else ("", "", 0)
        if kind == "." and after[0] != "quant":
            yield _Issue(
                "origin-regex-broad", loc,
                f"the unescaped '.' in '{pattern}' matches any character, so 'app.example.com' also admits "
                "'appxexample.com', which anyone can register",
                "escape dots as '\\.'",
            )
            return
        if kind != "quant" or text.startswith("?") or i == 0:
            continue
        repeated = tokens[i - 1]
        if _matches_letters(repeated) and after[0] == "lit" and (after[1].isalnum() or after[1] == "-"):
            yield _Issue(
                "origin-regex-broad", loc,
                f"a wildcard in '{pattern}' runs straight into {after[1]!r}, so a suffix like 'example\\.com' also "
                "admits hosts that merely end in it (https://evilexample.com)",
                "put '\\.' between the wildcard and the domain (.*\\.example\\.com)",
            )
            return
        if _matches_dot(repeated) and all(k in ("$", ")") for k, _, _ in tokens[i + 1 :]):
            yield _Issue(
                "origin-regex-broad", loc,
                f"'{pattern}' ends in a wildcard that crosses dots, so it admits any origin that only starts like "
                "the one meant (https://app.example.com.evil.net)",
                "end the pattern with the exact host (and port), then '$'",
            )
            return


def _regex_tokens(pattern: str) -> list[tuple[str, str, int]]:
    """Just enough of a regex tokenizer for the broadness rules: (kind, text, group depth).

    Kinds: "^" "$" "|" "(" ")" "." "quant", "class" (a set or a class escape like \\w), "lit" (one character).
    """
    out: list[tuple[str, str, int]] = []
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            esc = pattern[i + 1]
            kind = {"A": "^", "Z": "$", "z": "$"}.get(esc, "class" if esc.isalnum() else "lit")
            out.append((kind, esc if kind == "lit" else pattern[i : i + 2], depth))
            i += 2
            continue
        if c == "[":
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            j += pattern[j : j + 1] == "]"
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(("class", pattern[i : j + 1], depth))
            i = j + 1
            continue
        quant = _QUANTIFIER_RE.match(pattern, i)
        if quant and out and out[-1][0] not in ("(", "|", "^"):
            end = quant.end() + (pattern[quant.end() : quant.end() + 1] in ("?", "+"))  # lazy / possessive
            out.append(("quant", pattern[i:end], depth))
            i = end
            continue
        if c == "(":
            group = re.match(r"\(\?(?:[:=!>]|<[=!]|P?<[A-Za-z_]\w*>)?", pattern[i:])
            out.append(("(", group.group(0) if group else "(", depth))
            depth += 1
            i += len(group.group(0)) if group else 1
            continue
        if c == ")":
            depth = max(depth - 1, 0)
        out.append((c if c in "^$|.()" else "lit", c, depth))
        i += 1
    return out


def _matches_letters(token: tuple[str, str, int]) -> bool:
    """Can this token match host letters: '.', \\w, \\S, \\D, a negated set, a set with a-z?"""
    kind, text, _ = token
    if kind == "." or (kind == "class" and text.startswith("[^")):
        return True
    if kind != "class":
        return False
    return text[1] in "wSD" if text.startswith("\\") else "a-z" in text or "A-Z" in text or "\\w" in text


def _matches_dot(token: tuple[str, str, int]) -> bool:
    """Can this token match the '.' between host labels: '.', \\S, \\W, \\D, a set with '.', a negated set
    without it?"""
    kind, text, _ = token
    if kind == ".":
        return True
    if kind != "class":
        return False
    if text.startswith("\\"):
        return text[1] in "SWD"
    return ("." not in text) if text.startswith("[^") else ("." in text)


def _cors_plugin(policy: Policy, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in policy.plugins and policy.plugins[n].type == "cors"), None)


def _binding_issues(policy: Policy) -> Iterator[_Issue]:
    """APIG's binding rules: the API's method in allow_methods, one CORS plug-in per path, none beside OPTIONS."""
    first_plugin: dict[tuple[Any, ...], tuple[str, str]] = {}  # (group, host, path shape) -> (plug-in, API)
    options_apis: dict[tuple[Any, ...], int] = {}
    for i, api in enumerate(policy.apis):
        if api.method == "OPTIONS":
            options_apis.setdefault(_same_path(api), i)
    for i, api in enumerate(policy.apis):
        name = _cors_plugin(policy, api.plugins)
        if name is None:
            continue
        methods = policy.plugins[name].content.allow_methods
        if api.method != "ANY" and "*" not in methods and api.method not in methods:
            spelled = [m for m in methods if m.upper() == api.method]
            hint = f" (only as {spelled[0]!r}: methods compare case-sensitively)" if spelled else ""
            yield _Issue(
                "method-not-in-plugin", ("apis", i, "method"),
                f"API {api.name!r} is {api.method} but its CORS plug-in {name!r} does not allow {api.method}{hint}; "
                "APIG refuses that binding, and browsers refuse the preflight of anything but GET, HEAD and POST",
                f"add {api.method} to plugins.{name}.content.allow_methods, or bind another plug-in",
            )
        key = _same_path(api)
        other = first_plugin.setdefault(key, (name, api.name))
        if other[0] != name:
            yield _Issue(
                "plugin-path-conflict", ("apis", i, "plugins"),
                f"API {api.name!r} binds CORS plug-in {name!r} but API {other[1]!r} on the same path in group "
                f"{api.group or '(none)'!r} binds {other[0]!r}; APIG allows one CORS plug-in per path and group",
                f"bind {other[0]!r} to both, or merge the two plug-ins",
            )
        options_index = options_apis.get(key, i)
        if options_index != i:
            options_api = policy.apis[options_index].name
            yield _Issue(
                "options-api-with-plugin", ("apis", i, "plugins"),
                f"API {api.name!r} binds CORS plug-in {name!r} on the path of OPTIONS API {options_api!r}; APIG "
                "forbids a CORS plug-in there, since the plug-in answers the preflights the OPTIONS API would",
                f"remove OPTIONS API {options_api!r} (the plug-in answers preflights) or unbind the plug-in",
            )


def _same_path(api: Api) -> tuple[Any, ...]:
    """APIG's "same request path in a group": group, host and path shape (parameter names do not count)."""
    return (api.group, api.host, route_signature(api.host, api.method, api.path, api.match_mode)[-1])


def _shadowed(policy: Policy) -> Iterator[_Issue]:
    """APIs that no request reaches: every probe request that fits the API is routed elsewhere.

    Probes fill each {param} with a value no literal uses (the least contested choice), add up to one more
    segment than the deepest API for prefix and {param+} APIs, and try every APIG method for ANY.
    """
    apis = policy.apis
    router = _router(policy)
    depth = max((len(parse_path(a.path)) for a in apis), default=0) + 1
    for i, api in enumerate(apis):
        winners: dict[int, None] = {}  # ordered set
        domains = group_domains(policy, api)
        probes = ((api.host or (domains[0] if domains else host), method, path, tls)
                  for host, method, path in _probes(api, depth) for tls in _PROTOCOLS[api.req_protocol])
        for host, method, path, tls in probes:
            found = router.lookup(host, method, path, tls)
            if found is None or found.index in (i, -1):
                break
            winners[found.index] = None
        else:
            names = ", ".join(repr(apis[w].name) for w in winners)
            yield _Issue(
                "shadowed-api", ("apis", i),
                f"no request reaches API {api.name!r}: every request it matches goes to {names} "
                "(host, then NORMAL before SWA, longer literal path, fewer parameters, named method, file order)",
                "give it a more specific path, host or method than the API that takes its requests, or remove it",
            )


def _probes(api: Api, depth: int) -> Iterator[tuple[str, str, str]]:
    """(host, method, path) requests that fit the API, least contested first."""
    segments = parse_path(api.path)
    base = [text if kind == "lit" else f"cors-lint-{n}" for n, (kind, text) in enumerate(segments)]
    open_ended = api.match_mode == "SWA" or (bool(segments) and segments[-1][0] == "rest")
    for method in (_APIG_METHODS if api.method == "ANY" else (api.method,)):
        for extra in range(depth + 1) if open_ended else (0,):
            yield api.host or _PROBE_HOST, method, "/" + "/".join(base + [f"cors-lint-x{k}" for k in range(extra)])


def _unexposed_headers(policy: Policy) -> Iterator[_Issue]:
    """A header a set_resp_headers plug-in puts on a cross-origin API's responses that JavaScript cannot read."""
    for i, api in enumerate(policy.apis):
        edits = next((p.content for n in api.plugins if (p := policy.plugins.get(n)) and p.type == "set_resp_headers"),
                     None)
        cors_name = _cors_plugin(policy, api.plugins)
        if edits is None or (cors_name is None and not api.cors):
            continue  # not called cross-origin, as far as the policy says
        content = policy.plugins[cors_name].content if cors_name else None
        exposed = {h.lower() for h in content.expose_headers} if content else set()
        if "*" in exposed:
            continue  # all of them (literally without credentials, echoed with them: the plug-in's edit comes first)
        for header in edits.response_headers:
            low = header.name.lower()
            if header.action == "delete" or low in exposed or low in SAFELISTED_RESPONSE:
                continue
            where = f"CORS plug-in {cors_name!r}" if cors_name else "the CORS switch (Access-Control-Allow-Origin: * only)"
            fix = (f"add {header.name} to plugins.{cors_name}.content.expose_headers" if cors_name
                   else "bind a CORS plug-in that lists it in expose_headers")
            yield _Issue(
                "resp-header-not-exposed", ("apis", i, "plugins"),
                f"API {api.name!r} gets {header.name} from its set_resp_headers plug-in, but {where} does not "
                "expose it: a cross-origin page cannot read it",
                fix + ", or silence this rule if pages need not read it",
            )


def _router(policy: Policy) -> Router:
    """The router the engine builds, groups' domains and protocols included."""
    return Router([(a.host, a.method, a.path, a.match_mode) for a in policy.apis],
                  [(group_domains(policy, a), a.req_protocol) for a in policy.apis])


def _group_and_protocol(policy: Policy) -> Iterator[_Issue]:
    """APIG's conditions on Method 1: the OPTIONS API shares the CORS API's group and protocol."""
    apis = policy.apis
    router = _router(policy)
    for i, api in enumerate(apis):
        if not api.cors or api.method == "OPTIONS" or _cors_plugin(policy, api.plugins):
            continue  # a CORS plug-in answers its API's preflights itself (Method 2)
        domains = group_domains(policy, api)
        host, _, path = next(_probes(api, 0))
        host = api.host or (domains[0] if domains else host)
        for tls in _PROTOCOLS[api.req_protocol]:
            found = router.lookup(host, "OPTIONS", path, tls)
            answer = apis[found.index] if found is not None and found.index >= 0 else None
            if answer is not None and answer.group == api.group and (
                    (answer.method == "OPTIONS" and answer.cors) or _cors_plugin(policy, answer.plugins)):
                continue
            over = "HTTPS" if tls else "HTTP"
            why = (f"the OPTIONS request goes to API {answer.name!r} of group {answer.group or '(none)'!r}"
                   if answer is not None else "no API takes the OPTIONS request")
            yield _Issue(
                "preflight-unanswered", ("apis", i),
                f"API {api.name!r} has CORS on, but a browser's preflight for it over {over} is not answered: {why}; "
                "APIG answers it only from an OPTIONS API in the same group and protocol (Method 1) or a CORS "
                "plug-in on the API (Method 2)",
                f"add an OPTIONS API in group {api.group or '(none)'!r} (prefix match on '/', auth none, CORS on, "
                f"mock backend) whose req_protocol covers {over}, or bind a CORS plug-in",
            )
            break
    for i, api in enumerate(apis):
        if api.method != "OPTIONS" or not api.cors:
            continue
        served = any(
            "BOTH" in (api.req_protocol, other.req_protocol) or other.req_protocol == api.req_protocol
            for other in apis
            if other.method != "OPTIONS" and other.group == api.group and (other.cors or _cors_plugin(policy, other.plugins))
        )
        if not served:
            yield _Issue(
                "options-api-unmatched", ("apis", i),
                f"OPTIONS API {api.name!r} (group {api.group or '(none)'!r}, req_protocol {api.req_protocol}) serves "
                "no API with CORS on in its group and protocol; APIG uses it only for those",
                "move it to the group of the APIs whose preflights it should answer and give it their protocol "
                "(or BOTH), or remove it",
            )
