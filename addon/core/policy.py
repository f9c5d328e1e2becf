"""Load, validate and freeze corsgate policy files (YAML or JSON, APIG field names).

The format is DESIGN.md §4. Validation is done by pydantic models (the same models
produce policies/schema.json); errors are re-worded to name the file, the line and
the field path, with a suggestion for a misspelt key. Everything returned is
immutable, so a loaded policy can be shared by every flow without copying.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.reader import ReaderError

from addon.core import routing
from addon.core.fields import is_token
from addon.core.pacing import each, pace

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "default.yaml"
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "ANY")
# Bounds that keep loading a file (and so a reload inside the proxy) within ~2 s of CPU and a few hundred
# MiB. JSON loads and compiles at ~0.6 s/MiB; YAML at ~100 KiB per CPU second with the pure-Python parser
# (libyaml is ~6x faster, but is not installed everywhere, and a policy must load the same everywhere).
MAX_POLICY_BYTES = 2 * 1024 * 1024  # JSON: a compact 10,000-API policy is ~1.7 MB
MAX_YAML_BYTES = 384 * 1024  # ~1,500 APIs, ~0.75 s of CPU (issue 7 allows 2 s); larger ones load ~30x faster as JSON
# A policy nests 5 levels deep. Deeper: the pure YAML scanner is quadratic, libyaml's composer recursive.
MAX_NESTING = 32
MAX_VALUES = 200_000  # a 10,000-API policy holds ~100,000; each invalid value costs pydantic ~1 KiB of errors
MAX_PROBLEMS = 50  # report this many; thousands of messages help nobody and cost time
API_CHUNK = 64  # APIs validated per call, ~0.5 ms: a step of a paced load (one call per API costs ~25 % more)
LOCATE_MAX_BYTES = 64 * 1024  # above this (~250 APIs), problems name the field path, not the line: a second, slow parse
# RFC 9110 field-value, visible ASCII only: what the gateway may write as a header value.
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?)?")
_LONG_NUMBER = re.compile(r"[0-9]{4300,}")  # Python refuses to convert longer digit strings to int
_JSON_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class PolicyError(Exception):
    """A policy file that cannot become active; str() lists every problem, one per line."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        if len(problems) > MAX_PROBLEMS:
            more = Problem(None, "", f"... and {len(problems) - MAX_PROBLEMS} more problems")
            problems = [*problems[:MAX_PROBLEMS], more]
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render(file) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Problem:
    """One located error: where (line, field path) and what."""

    line: int | None
    field: str
    message: str

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.field or '(top level)'}: {self.message}"


def _comma_list(value: Any) -> Any:
    """APIG writes lists as comma-separated strings; YAML users write lists. Accept both."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, (list, tuple)):
        return tuple(item.strip() if isinstance(item, str) else item for item in value)
    return value


CommaList = Annotated[
    tuple[Annotated[str, Strict()], ...], BeforeValidator(_comma_list, json_schema_input_type=str | list[str])
]
# YAML 1.2 keeps `yes`/`on` as strings; strict scalars refuse them instead of guessing.
Bool = Annotated[bool, Strict()]
Int = Annotated[int, Strict()]
Str = Annotated[str, Strict()]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorsContent(_Model):
    """APIG CorsPluginContent plus corsgate's extensions."""

    allow_origin: CommaList = Field(
        default=(),
        description="Allowed origins, comma-separated or a list: '*', exact origins "
        "(https://app.example.com), or wildcards (https://*.example.com). May be empty when "
        "allow_origin_regex or allow_null_origin admit the callers; empty with neither admits no origin.",
    )
    allow_methods: CommaList = Field(default=(), description="Access-Control-Allow-Methods; '*' for any.")
    allow_headers: CommaList = Field(
        default=(), description="Access-Control-Allow-Headers; '*' for any (never covers Authorization)."
    )
    expose_headers: CommaList = Field(
        default=(), description="Access-Control-Expose-Headers; '*' for all response headers."
    )
    max_age: Int | None = Field(default=None, ge=0, description="Access-Control-Max-Age in seconds.")
    allow_credentials: Bool = Field(default=False, description="Send Access-Control-Allow-Credentials: true.")
    allow_origin_regex: CommaList = Field(
        default=(), description="Extension: regular expressions an origin must match in full."
    )
    allow_null_origin: Bool = Field(default=False, description="Extension: allow the origin 'null'.")
    allow_private_network: Bool = Field(
        default=False, description="Extension: answer Access-Control-Request-Private-Network."
    )
    preflight: Literal["answer", "forward"] = Field(
        default="answer", description="Extension: answer preflights at the gateway, or forward them upstream."
    )
    precedence: Literal["backend", "gateway"] = Field(
        default="backend", description="Extension: whose CORS headers win when the backend sends its own."
    )

    @property
    def admits_no_origin(self) -> bool:
        """No origin can pass: no allow_origin entry, no regex, no null. A plug-in that means "no cross-origin caller"."""
        return not (self.allow_origin or self.allow_origin_regex or self.allow_null_origin)

    @field_validator("allow_methods")
    @classmethod
    def _methods_are_tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for method in value:
            if method != "*" and not is_token(method):
                raise ValueError(f"{method!r} is not a valid method name")
        return value

    @field_validator("allow_headers", "expose_headers")
    @classmethod
    def _headers_are_tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name != "*" and not is_token(name):
                raise ValueError(f"{name!r} is not a valid header name")
        return value

    @field_validator("allow_origin_regex")
    @classmethod
    def _regexes_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as e:  # a{4294967296}, 5000 nested groups
                raise ValueError(f"invalid regular expression {_describe(pattern)}: {e}") from None
        return value

    @field_validator("allow_origin")
    @classmethod
    def _origins_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from addon.core.origins import parse_origin_rule

        for rule in value:
            parse_origin_rule(rule)  # raises ValueError with the reason
        return value


# APIG's set_resp_headers plug-in (HTTP response header management, apig_03_0022).
RESP_HEADER_ACTIONS = ("override", "append", "delete", "skip", "add")
MAX_RESP_HEADERS = 10
_RESP_HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,31}")


def protected_header(name: str) -> bool:
    """Headers APIG's response header plug-in may not touch: the gateway's own and the CORS ones."""
    low = name.lower()
    return low.startswith(("x-apig-", "access-control-")) or low == "x-request-id"


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class RespHeader(_Model):
    """One APIG HeaderPolicy: a response header and what to do with it."""

    name: Str = Field(description="Header name: a letter, then letters, digits or '-', at most 32; case-insensitive. "
                                  "Never X-Apig-*, X-Request-Id or Access-Control-*.")
    value: Str = Field(default="", max_length=255, description="Header value (ignored by delete).")
    action: Annotated[Literal["override", "append", "delete", "skip", "add"], BeforeValidator(_lower)] = Field(
        description="override: one field with this value; append: existing values and this one joined with ','; "
                    "delete: remove all; skip: keep existing ones, add it if absent; add: always add another field."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RESP_HEADER_NAME.fullmatch(value):
            raise ValueError(f"{_describe(value)} is not an APIG response header name: a letter, then letters, "
                             "digits or '-', at most 32 characters")
        if protected_header(value):
            raise ValueError(f"{value!r} cannot be managed by set_resp_headers: X-Apig-*, X-Request-Id and the "
                             "Access-Control-* headers belong to the gateway and its CORS layer (as on APIG)")
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        return _header_value("value", value)


class RespHeadersContent(_Model):
    """APIG SetRespHeadersContent."""

    response_headers: tuple[RespHeader, ...] = Field(
        max_length=MAX_RESP_HEADERS, description="At most 10 headers, names unique case-insensitively."
    )

    @field_validator("response_headers")
    @classmethod
    def _unique(cls, value: tuple[RespHeader, ...]) -> tuple[RespHeader, ...]:
        seen: set[str] = set()
        for header in value:
            if header.name.lower() in seen:
                raise ValueError(f"header {header.name!r} is listed twice (names are case-insensitive)")
            seen.add(header.name.lower())
        return value


class CorsPlugin(_Model):
    """An APIG CORS plug-in policy."""

    type: Literal["cors"] = Field(description="APIG plug-in type 'cors'.")
    content: CorsContent = Field(
        description="The plug-in's settings: APIG CorsPluginContent plus corsgate's extensions."
    )


class RespHeadersPlugin(_Model):
    """An APIG HTTP response header management plug-in policy."""

    type: Literal["set_resp_headers"] = Field(description="APIG plug-in type 'set_resp_headers'.")
    content: RespHeadersContent = Field(description="The plug-in's settings: APIG SetRespHeadersContent.")


PLUGIN_TYPES: dict[str, type[BaseModel]] = {"cors": CorsPlugin, "set_resp_headers": RespHeadersPlugin}
Plugin = Annotated[CorsPlugin | RespHeadersPlugin, Field(discriminator="type")]


class Backend(_Model):
    """Where an API's requests go: upstream (http) or a gateway-made mock response."""

    type: Literal["http", "mock"] = Field(default="http", description="http: upstream; mock: fixed response.")
    status: Int = Field(default=200, ge=100, le=599, description="Mock status code.")
    body: Str = Field(default="", description="Mock body.")
    headers: dict[Str, Str] = Field(default_factory=dict, description="Mock response headers.")

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, val in value.items():
            if not is_token(name):
                raise ValueError(f"{name!r} is not a valid header name")
            _header_value(f"value of {name!r}", val)
        return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class Api(_Model):
    """One APIG API: a (host, method, path, match mode) route and what happens on it."""

    name: Str = Field(description="API name (shown in diagnoses).")
    group: str = Field(default="", description="API group; when `groups` gives it domains, the API matches only "
                                                "requests for those hosts.")
    req_protocol: Annotated[Literal["HTTP", "HTTPS", "BOTH"], BeforeValidator(_upper)] = Field(
        default="BOTH", description="APIG's request protocol: HTTPS matches only requests that reached the gateway "
                                    "over TLS, HTTP only plain ones, BOTH either.")
    method: Literal["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "ANY"] = Field(
        description="Request method; ANY matches every method without a more specific API."
    )
    path: Str = Field(description="APIG req_uri: '/users/{id}' (one segment), '/files/{path+}' (the rest).")
    match_mode: Literal["NORMAL", "SWA"] = Field(default="NORMAL", description="NORMAL: exact; SWA: prefix.")
    host: str | None = Field(default=None, description="Only requests to this host; default any host.")
    cors: Bool = Field(default=False, description="APIG's simple CORS switch.")
    plugins: CommaList = Field(default=(), description="Names of bound plug-ins (at most one per type).")
    auth: Literal["none", "app", "iam"] = Field(
        default="none", description="APIG security authentication; not 'none' requires an Authorization header."
    )
    backend: Backend = Field(
        default_factory=Backend, description="Where its requests go: the upstream (http, default) or a mock response."
    )

    @field_validator("path")
    @classmethod
    def _path_parses(cls, value: str) -> str:
        routing.parse_path(value)  # raises ValueError with the reason
        return value

    @field_validator("host")
    @classmethod
    def _host_lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value


_HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")


class Group(_Model):
    """An APIG API group: the domain names bound to it."""

    domains: CommaList = Field(default=(), description="Host names bound to the group (APIG's bound domain names); "
                                                       "its APIs match only requests for these. Empty: any host.")

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(domain.lower().rstrip(".") for domain in value)
        for domain in out:
            if not _HOST_NAME.fullmatch(domain):
                raise ValueError(f"{_describe(domain)} is not a host name (no scheme, port or path)")
        return out


class Gateway(_Model):
    """Gateway-wide behaviour."""

    request_id: Bool = Field(default=True, description="X-Request-Id on every response of a matched API.")
    server: str | None = Field(default="api-gateway", description="Server header on gateway-made responses.")
    unmatched: Literal["pass", "reject"] = Field(
        default="pass", description="pass: unmatched requests go upstream untouched; reject: APIG.0101 404."
    )

    @field_validator("server")
    @classmethod
    def _server_value(cls, value: str | None) -> str | None:
        return value if value is None else _header_value("server", value)


def _header_value(what: str, value: str) -> str:
    """A value the gateway writes into a response header as it is: the field-value grammar, visible ASCII."""
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError(f"{what} {_describe(value)} is not a header value: printable ASCII, no CR, LF or "
                         "control characters, no leading or trailing space")
    return value


class Policy(_Model):
    """A whole policy file."""

    version: Literal[1] = Field(description="Format version; always 1.")
    gateway: Gateway = Field(
        default_factory=Gateway, description="Gateway-wide behaviour: X-Request-Id, Server header, unmatched requests."
    )
    plugins: dict[str, Plugin] = Field(default_factory=dict, description="Plug-in policies by name.")
    groups: dict[str, Group] = Field(default_factory=dict, description="API groups by name, with their domains.")
    apis: tuple[Api, ...] = Field(default=(), description="The APIs, in file order.")

    @model_validator(mode="after")
    def _bindings_and_ties(self) -> Policy:
        _check_cross_fields(self)
        return self


def _check_cross_fields(policy: Policy) -> None:
    """Plug-in bindings and routing ties, which no single field can check; raises _CrossFieldErrors."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, api in enumerate(each(policy.apis)):
        types: set[str] = set()
        for name in api.plugins:
            if len(problems) >= MAX_PROBLEMS:
                break
            plugin = policy.plugins.get(name)
            if plugin is None:  # a did-you-mean for the first few: each one scans every plug-in name
                hint = _suggest(name, policy.plugins) if len(problems) < 10 else ""
                problems.append((("apis", i, "plugins"), f"unknown plug-in {name!r}{hint}"))
            elif plugin.type in types:
                problems.append((("apis", i, "plugins"), f"more than one plug-in of type {plugin.type!r}"))
            else:
                types.add(plugin.type)
        domains = group_domains(policy, api)
        if api.host and domains and api.host not in domains:
            problems.append((("apis", i, "host"), f"host {api.host!r} is not a domain of group {api.group!r} "
                                                  f"({', '.join(domains)}): no request could reach the API"))
        key = routing.route_signature(api.host, api.method, api.path, api.match_mode, domains)
        if key in seen:
            other = policy.apis[seen[key]].name
            problems.append(
                (("apis", i), f"API {api.name!r} ties with API {other!r} (same host, method, path and match mode)")
            )
        else:
            seen[key] = i
    if problems:
        raise _CrossFieldErrors(problems)


def group_domains(policy: Policy, api: Api) -> tuple[str, ...]:
    """The domains an API's group is bound to; empty when the group names none (any host)."""
    group = policy.groups.get(api.group) if api.group else None
    return group.domains if group is not None else ()


class _CrossFieldErrors(ValueError):
    """Carries located cross-field problems out of the model validator."""

    def __init__(self, problems: list[tuple[tuple[Any, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(m for _, m in problems))


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy and where it came from."""

    policy: Policy
    source: str
    digest: str  # short sha256 of the file's bytes: tells a user which policy is live


def load_policy(path: str | Path | None = None) -> LoadedPolicy:
    """Read and validate a policy file; the embedded default when path is empty."""
    file = Path(path) if path else DEFAULT_POLICY
    try:
        with open(file, "rb") as f:
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as e:
        raise PolicyError(str(file), [Problem(None, "", f"cannot read file: {e.strerror or e}")]) from e
    return parse_policy(data, str(file))


def parse_policy(data: bytes | str, source: str = "<policy>") -> LoadedPolicy:
    """Validate policy text (YAML or JSON); raise PolicyError naming line and field."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(source, [Problem(None, "", f"file is larger than {MAX_POLICY_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PolicyError(source, [Problem(_line_of_offset(raw, e.start), "", "file is not UTF-8")]) from e
    document = _parse_document(text, source)
    _check_shape(document, text, source)
    try:
        policy = _validate(document)
    except _ValidationErrors as e:
        raise PolicyError(source, _problems(e.errors, text)) from None
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return LoadedPolicy(policy, source, digest)


class _ValidationErrors(Exception):
    """pydantic's error dicts for a document, in the order one validation of the whole reports them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} validation errors")


_API_LIST = TypeAdapter(list[Api])


def _validate(document: Any) -> Policy:
    """Policy.model_validate(document), with the APIs validated a chunk at a time so a paced load can rest between.

    pydantic validates a whole document in one call; a paced loader (addon/core/pacing.py) can only give
    the GIL away between calls. The errors are the same, in the same order: the top level's fields
    first, then the APIs' (located under ("apis", i)), then unknown top-level keys; and the cross-field
    checks run only on a policy whose fields are all valid.
    """
    if not isinstance(document, dict) or not isinstance(document.get("apis"), list):
        try:  # not the shape a paced load splits: pydantic's word on the whole, as it is
            return Policy.model_validate(document)
        except ValidationError as e:
            raise _ValidationErrors(e.errors(include_url=False)) from None
    head: list[dict[str, Any]] = []
    tail: list[dict[str, Any]] = []  # unknown top-level keys: pydantic reports them after every field
    try:
        shell = Policy.model_validate({**document, "apis": []})
    except ValidationError as e:
        for err in e.errors(include_url=False):
            (tail if err["type"] == "extra_forbidden" and len(err["loc"]) == 1 else head).append(err)
    items: list[Any] = document["apis"]
    apis: list[Api] = []
    for start in each(range(0, len(items), API_CHUNK)):
        if len(head) >= MAX_PROBLEMS:  # no more are reported (see _problems)
            break
        try:
            apis.extend(_API_LIST.validate_python(items[start:start + API_CHUNK]))
        except ValidationError as e:
            head.extend({**err, "loc": ("apis", start + err["loc"][0], *err["loc"][1:])}
                        for err in e.errors(include_url=False))
    if head or tail:
        raise _ValidationErrors(head + tail)
    policy = shell.model_copy(update={"apis": tuple(apis)})  # the instances are valid: no second validation
    try:
        _check_cross_fields(policy)
    except _CrossFieldErrors as e:  # as pydantic reports it when the model validator raises it
        raise _ValidationErrors([{"type": "value_error", "loc": (), "ctx": {"error": e}}]) from None
    return policy


def _parse_document(text: str, source: str) -> Any:
    if source.endswith(".json") or text.lstrip().startswith("{"):
        return _parse_json(text, source)
    if len(text.encode()) > MAX_YAML_BYTES:
        raise PolicyError(source, [Problem(None, "", f"YAML policies are limited to {MAX_YAML_BYTES} bytes "
                                                     "(the YAML parser is slow); write a larger policy as JSON")])
    try:
        _check_events(text)
        return _safe_yaml().load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise PolicyError(source, [Problem(line, "", f"invalid YAML: {e.problem or e.context}")]) from None
    except ReaderError as e:  # a character YAML does not allow, located by its offset
        line = text.count("\n", 0, e.position) + 1
        raise PolicyError(source, [Problem(line, "", f"invalid YAML: {e.reason} (#x{e.character:04x})")]) from None
    except (YAMLError, ValueError, AssertionError) as e:  # ValueError: huge ints; AssertionError: %YAML 1.3
        line = _line_of_match(text, _LONG_NUMBER) or _line_of_match(text, re.compile(r"^%YAML", re.M))
        raise PolicyError(source, [Problem(line, "", f"invalid YAML: {e}")]) from None


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise PolicyError(source, [Problem(e.lineno, "", f"invalid JSON: {e.msg}")]) from None
    except RecursionError:
        line = _nesting_line(text)
        raise PolicyError(source, [Problem(line, "", f"nested deeper than {MAX_NESTING} levels")]) from None
    except ValueError as e:  # an integer past Python's 4300-digit conversion limit
        raise PolicyError(source, [Problem(_line_of_match(text, _LONG_NUMBER), "", f"invalid JSON: {e}")]) from None


def _safe_yaml() -> YAML:
    """YAML 1.2 safe loader; libyaml's parser via ruamel.yaml.clib (about 6x faster) where it is installed."""
    yaml = YAML(typ="safe")
    yaml.allow_duplicate_keys = False
    return yaml


def _check_events(text: str) -> None:
    """Refuse aliases and deep nesting from the event stream, before anything is composed or built.

    Aliases are legal YAML but make "billion laughs" and merge-key bombs possible (a policy
    never needs them); deep nesting is quadratic for the pure-Python scanner and overflows the
    C stack in libyaml's recursive composer (a segfault). The event parser is iterative, and
    stops at the first offence, so both are refused in bounded time with their line.
    """
    depth = 0
    for event in each(_safe_yaml().parse(io.StringIO(text))):
        if isinstance(event, AliasEvent):
            raise MarkedYAMLError(problem="anchors/aliases are not allowed", problem_mark=event.start_mark)
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise MarkedYAMLError(problem=f"nested deeper than {MAX_NESTING} levels", problem_mark=event.start_mark)
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _check_shape(document: Any, text: str, source: str) -> None:
    """At most MAX_VALUES values, nested at most MAX_NESTING deep: walked without recursion, before validation."""
    count, stack = 0, [(document, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count % 1024 == 0:
            pace()
        if count > MAX_VALUES:
            raise PolicyError(source, [Problem(None, "", f"more than {MAX_VALUES} values: not a policy")])
        if depth > MAX_NESTING:
            raise PolicyError(source, [Problem(_nesting_line(text), "", f"nested deeper than {MAX_NESTING} levels")])
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)


def _nesting_line(text: str) -> int | None:
    """Line where JSON brackets first nest deeper than MAX_NESTING (strings skipped); only run on failure."""
    depth = 0
    for m in _JSON_BRACKETS.finditer(text):
        if m.group() in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return text.count("\n", 0, m.start()) + 1
        elif m.group() in "]}":
            depth -= 1
    return None


def _line_of_match(text: str, pattern: re.Pattern[str]) -> int | None:
    m = pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _problems(errors: Sequence[Mapping[str, Any]], text: str) -> list[Problem]:
    # Line numbers need a second, round-trip parse: only for hand-sized files with more than one line.
    one_line = "\n" not in text.strip()  # compact JSON: every problem is on line 1
    tree = located_tree(text) if len(text) <= LOCATE_MAX_BYTES and not one_line else None
    problems: list[Problem] = []
    for err in errors[:MAX_PROBLEMS]:
        loc = tuple(err["loc"])
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _CrossFieldErrors):
            problems.extend(
                Problem(1 if one_line else line_of(tree, sub), _field_path(sub), msg) for sub, msg in ctx_error.problems
            )
            continue
        shown = _without_tag(loc)
        # An empty or truncated file has its problem on the first line.
        line = 1 if one_line else line_of(tree, shown) or (1 if not shown else None)
        problems.append(Problem(line, _field_path(shown), _message(err, loc)))
    return problems


def _without_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic puts a plug-in's type into the location (plugins.NAME.cors.content...): the file has no such key."""
    if len(loc) > 2 and loc[0] == "plugins" and loc[2] in PLUGIN_TYPES:
        return loc[:2] + loc[3:]
    return loc


def _message(err: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    kind = err["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        given = (err.get("input") or {}).get("type") if isinstance(err.get("input"), Mapping) else None
        hint = _suggest(given, PLUGIN_TYPES) if isinstance(given, str) else ""
        return f"type must be one of {', '.join(map(repr, PLUGIN_TYPES))}, got {_describe(given)}{hint}"
    if kind == "extra_forbidden":
        return f"unknown field {loc[-1]!r}{_suggest(str(loc[-1]), _allowed_keys(loc[:-1]))}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']}, got {_describe(err.get('input'))}"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind in ("bool_type", "int_type", "string_type", "dict_type", "tuple_type", "model_type"):
        expected = {"bool_type": "true or false", "int_type": "an integer", "string_type": "a string",
                    "dict_type": "a mapping", "tuple_type": "a list", "model_type": "a mapping"}[kind]
        return f"must be {expected}, got {_describe(err.get('input'))}"
    return str(err["msg"])


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(loc: tuple[Any, ...]) -> Sequence[str]:
    """The field names valid at a location, for did-you-mean suggestions."""
    model: type[BaseModel] = Policy
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if model is Policy and part == "plugins":  # plugins, NAME, TYPE (pydantic's tag)
            tag = parts[1] if len(parts) > 1 else None
            model = PLUGIN_TYPES.get(tag, CorsPlugin) if isinstance(tag, str) else CorsPlugin
            del parts[:2]
        elif not isinstance(part, int):  # list indexes stay on the item model
            model = _CHILDREN.get((model, part), model)
    return tuple(model.model_fields)


_CHILDREN: dict[tuple[type[BaseModel], Any], type[BaseModel]] = {
    (Policy, "gateway"): Gateway,
    (Policy, "apis"): Api,
    (Policy, "groups"): Group,
    (CorsPlugin, "content"): CorsContent,
    (RespHeadersPlugin, "content"): RespHeadersContent,
    (RespHeadersContent, "response_headers"): RespHeader,
    (Api, "backend"): Backend,
}


def _suggest(word: str, options: Sequence[str] | Mapping[str, Any]) -> str:
    if len(word) > 100:  # a typo is short; difflib is quadratic in the length
        return ""
    match = difflib.get_close_matches(word, [o for o in options if len(o) <= 100], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def located_tree(text: str) -> Any:
    """Round-trip parse (YAML or JSON) that keeps line numbers: for error messages and the linter."""
    try:
        return YAML(typ="rt").load(text)
    except Exception:  # the fast parser accepted it; line info is a nicety, never a new failure
        return None


def line_of(tree: Any, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest node on loc that exists in the round-trip tree."""
    node, line = tree, None
    for part in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                line = lc.item(part)[0] + 1 if lc else line
                node = node[part]
            elif isinstance(node, dict) and part in node:
                line = lc.key(part)[0] + 1 if lc else line
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    if line is None and getattr(tree, "lc", None) is not None:
        line = tree.lc.line + 1
    return line


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1
