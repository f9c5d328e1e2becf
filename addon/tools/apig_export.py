"""Write a loaded corsgate policy as an APIG import document (`cors-export apig`), the inverse of apig_import.

The document is Swagger 2.0 JSON, APIG's default export, and one API group: each API an operation with the
`x-apigateway-*` extensions apig_import reads and its req_protocol as `schemes`, the group's first domain as
`host`, and the cors and set_resp_headers plug-ins under `x-corsgate-plugins` in the shape of APIG's
create-plug-in API, so one file carries both (see apig_format). Everything is written by the JSON library,
never by string templates.

What APIG cannot be told is a warning, located at the policy's file:line and field, saying what APIG
does instead: corsgate's CORS extensions (regex and null origins, private network, forwarded preflights,
gateway precedence), gateway settings APIG fixes (X-Request-Id, Server, unmatched requests), per-API
hosts (APIG routes by the group's domain), mock status and headers (the export carries only the body),
routes an OpenAPI file cannot hold twice, a group's further domains, APIs of groups with other domains
(left out), and an empty allow_origin (APIG requires one: apig_format.NO_ORIGIN is written).
A policy with no APIs cannot be imported and is refused.
Pure: reads the validated policy; the source file is read again only to find line numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from addon.core.policy import (
    LOCATE_MAX_BYTES,
    Api,
    CorsContent,
    CorsPlugin,
    LoadedPolicy,
    Plugin,
    PolicyError,
    Problem,
    _field_path,
    group_domains,
    line_of,
    located_tree,
)
from addon.core.routing import parse_path, route_signature
from addon.tools import apig_format as apig

# What APIG does instead of each setting it lacks; the README's list says the same.
GATEWAY_INSTEAD = {
    "request_id": "APIG sends X-Request-Id on every response",
    "server": "APIG sends its own Server header (api-gateway) on the responses it makes",
    "unmatched": "APIG answers a request that hits no API with APIG.0101 404",
}
EXTENSION_INSTEAD = {
    "allow_origin_regex": "APIG's CORS plug-in has no regular expressions: origins admitted only by them are refused",
    "allow_null_origin": "APIG's CORS plug-in has no 'null' origin: it is refused",
    "allow_private_network": "APIG's CORS plug-in does not answer Access-Control-Request-Private-Network",
    "preflight": "APIG's CORS plug-in answers preflights at the gateway (preflight: answer)",
    "precedence": "APIG keeps the backend's CORS headers when it sends its own (precedence: backend)",
}
MAX_IMPORT_APIS = 300  # APIG imports at most 300 APIs per file
PLUGIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{2,254}")  # APIG's plug-in name rule
UPSTREAM = "#upstream#"  # an APIG environment variable the user sets to the backend's host:port


def export_apig(policy: LoadedPolicy) -> tuple[str, list[Problem]]:
    """The APIG import document (Swagger 2.0 JSON) for a policy, and the warnings on what does not carry over.

    Raises PolicyError when there is nothing APIG could import (no APIs)."""
    warn = _Warnings(policy)
    if not policy.policy.apis:
        raise PolicyError(policy.source, [warn.problem(("apis",), "no APIs: APIG cannot import an empty export")])
    for field, value in apig.APIG_GATEWAY.items():
        if getattr(policy.policy.gateway, field) != value:
            warn(("gateway", field), f"{GATEWAY_INSTEAD[field]} ({field}: {json.dumps(value)})")
    plugins = [_plugin(name, plugin, warn) for name, plugin in policy.policy.plugins.items()]
    named = [api for api in policy.policy.apis if api.group]
    group = named[0].group if named else Path(policy.source).stem or "corsgate"  # info.title: the API group
    domains = group_domains(policy.policy, named[0]) if named else ()
    if len(domains) > 1:
        warn(("groups", group, "domains"), f"an export carries one domain name of group {group!r} (Swagger's "
                                           f"host): {domains[0]}; bind {', '.join(domains[1:])} to it on APIG")
    paths: dict[str, dict[str, Any]] = {}
    routes: dict[tuple[object, ...], str] = {}
    schemes: dict[str, Any] = {}
    names: set[str] = set()
    for i, api in enumerate(policy.policy.apis):
        if api.group != group and group_domains(policy.policy, api) != domains:
            warn(("apis", i), f"API {api.name!r} is left out: an export is one API group ({group!r}), and its "
                              f"group {api.group!r} has other domain names; export that group on its own")
            continue
        key = apig.OPERATION_KEYS[api.method]
        # Imported, every API matches any host: a route that ties once hosts are gone is left out too.
        route = route_signature(None, api.method, api.path, api.match_mode)
        same_key = paths.get(api.path, {}).get(key)
        if same_key is not None:
            warn(("apis", i), f"API {api.name!r} is left out: the export holds one operation per path and method, "
                              f"and API {same_key['operationId']!r} has {api.method} {api.path} already")
            continue
        if route in routes:
            warn(("apis", i), f"API {api.name!r} is left out: without hosts it would match the same requests as "
                              f"API {routes[route]!r} (the same method, path shape and match mode)")
            continue
        if api.host is not None:
            warn(("apis", i, "host"), f"APIG routes by the API group's bound domain names, not per API: "
                                      f"API {api.name!r} will answer on every domain of the group")
        if api.group and api.group != group:
            warn(("apis", i, "group"), f"an export is one API group: API {api.name!r} is imported into {group!r}")
        if api.name in names:
            warn(("apis", i, "name"), f"API name {api.name!r} is used twice: APIG needs unique names in a group")
        names.add(api.name)
        routes[route] = api.name
        paths.setdefault(api.path, {})[key] = _operation(i, api, schemes, warn)
    if len(routes) > MAX_IMPORT_APIS:
        warn(("apis",), f"{len(routes)} APIs: APIG imports at most {MAX_IMPORT_APIS} per file; split the policy")
    document: dict[str, Any] = {
        "swagger": "2.0",
        "info": {"title": group, "version": policy.digest,
                 "description": f"exported by cors-export apig from {Path(policy.source).name}"},
        "paths": paths,
    }
    if domains:
        document["host"] = domains[0]  # the group's domain name: APIG's export puts it here
    if schemes:
        document["securityDefinitions"] = schemes
    if plugins:
        document[apig.PLUGIN_DEFINITIONS] = plugins
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n", sorted(warn.problems, key=_by_line)


class _Warnings:
    """Collects located warnings: the policy file's line for a field path (when the file is still the one loaded)."""

    def __init__(self, policy: LoadedPolicy) -> None:
        self.problems: list[Problem] = []
        self._line: Callable[[tuple[Any, ...]], int | None] = _locator(policy)

    def problem(self, loc: tuple[Any, ...], message: str) -> Problem:
        return Problem(self._line(loc), _field_path(loc), message)

    def __call__(self, loc: tuple[Any, ...], message: str) -> None:
        self.problems.append(self.problem(loc, message))


def _by_line(problem: Problem) -> int:
    return problem.line or 0


def _locator(policy: LoadedPolicy) -> Callable[[tuple[Any, ...]], int | None]:
    """line_of over the source file, if it is readable, hand-sized and has the digest of the loaded policy."""
    try:
        data = Path(policy.source).read_bytes() if len(policy.source) < 4096 else b""
    except (OSError, ValueError):
        data = b""
    if not data or len(data) > LOCATE_MAX_BYTES or hashlib.sha256(data).hexdigest()[:12] != policy.digest:
        return lambda loc: None
    tree = located_tree(data.decode("utf-8"))
    return lambda loc: line_of(tree, loc)


def _plugin(name: str, plugin: Plugin, warn: _Warnings) -> dict[str, Any]:
    """A plug-in as APIG's create-plug-in API takes it: its content (CorsPluginContent or SetRespHeadersContent)
    as a JSON string."""
    if not PLUGIN_NAME.fullmatch(name):
        warn(("plugins", name), f"plug-in name {name!r}: APIG wants 3-255 letters, digits, '-' or '_', "
                                "starting with a letter, and refuses this one")
    if isinstance(plugin, CorsPlugin):
        body = _cors_body(("plugins", name, "content"), plugin.content, warn)
    else:
        body = {apig.RESP_HEADERS: [{**header.model_dump(include=set(apig.RESP_HEADER_FIELDS)),
                                     "value_type": "custom_value"} for header in plugin.content.response_headers]}
    return {"plugin_name": name, "plugin_type": plugin.type, "plugin_scope": "global",
            "plugin_content": json.dumps(body, separators=(",", ":")), "remark": "exported by cors-export apig"}


def _cors_body(loc: tuple[Any, ...], content: CorsContent, warn: _Warnings) -> dict[str, Any]:
    """CorsPluginContent's six fields; the extensions APIG lacks are warned."""
    for field, instead in EXTENSION_INSTEAD.items():
        if getattr(content, field) != CorsContent.model_fields[field].default:
            warn((*loc, field), instead)
    body: dict[str, Any] = {}
    for field in apig.CORS_FIELDS:
        value = getattr(content, field)
        if isinstance(value, tuple):
            if value:
                body[field] = ",".join(value)
        elif field == "max_age" and value is not None and value > apig.MAX_AGE_LIMIT:
            warn((*loc, field), f"APIG accepts max_age up to {apig.MAX_AGE_LIMIT}: exported as {apig.MAX_AGE_LIMIT} "
                                "(browsers cap it lower anyway)")
            body[field] = apig.MAX_AGE_LIMIT
        elif value is not None:
            body[field] = value
    if not content.allow_origin:
        warn((*loc, "allow_origin"), f"APIG requires allow_origin: written as {apig.NO_ORIGIN}, which no page has "
                                     "(the plug-in admits no origin on APIG; apig-import reads it back as empty)")
        body["allow_origin"] = apig.NO_ORIGIN
    return body


def _operation(i: int, api: Api, schemes: dict[str, Any], warn: _Warnings) -> dict[str, Any]:
    """One API as an operation with APIG's extensions; its security scheme is added to schemes."""
    operation: dict[str, Any] = {"operationId": api.name}
    params = [text for kind, text in parse_path(api.path) if kind != "lit"]
    if params:
        operation["parameters"] = [{"name": p, "in": "path", "required": True, "type": "string"} for p in params]
    operation["responses"] = {"default": {"description": "the backend's response"}}
    if api.auth in apig.SECURITY_SCHEMES:
        scheme, definition = apig.SECURITY_SCHEMES[api.auth]
        schemes[scheme] = definition
        operation["security"] = [{scheme: []}]
    operation["schemes"] = apig.PROTOCOL_SCHEMES[api.req_protocol]
    operation[apig.MATCH_MODE] = api.match_mode
    operation[apig.CORS_SWITCH] = api.cors
    if api.plugins:
        operation[apig.BOUND_PLUGINS] = list(api.plugins)
    operation[apig.BACKEND] = _backend(i, api, warn)
    return operation


def _backend(i: int, api: Api, warn: _Warnings) -> dict[str, Any]:
    backend = api.backend
    if backend.type == "mock":
        if backend.status != apig.MOCK_STATUS:
            warn(("apis", i, "backend", "status"),
                 f"APIG's export has no mock status: the mock answers {apig.MOCK_STATUS}")
        if {k.lower(): v for k, v in backend.headers.items()} != {k.lower(): v for k, v in apig.MOCK_HEADERS.items()}:
            sent = ", ".join(f"{k}: {v}" for k, v in apig.MOCK_HEADERS.items())
            warn(("apis", i, "backend", "headers"), f"APIG's export has no mock headers: the mock sends {sent}")
        return {"type": "MOCK", "mockEndpoints": {"result-content": backend.body}}
    return {"type": "HTTP", "httpEndpoints": {"address": UPSTREAM, "scheme": "http", "method": api.method,
                                              "path": api.path, "timeout": 5000}}
