"""Turn what Huawei APIG exports into a corsgate policy (DESIGN §5; facts in shared/notes/apig-import.md).

Input: an API export (Swagger 2.0 or OpenAPI 3.0, JSON or YAML, with APIG's `x-apigateway-*` extensions)
and APIG plug-in objects (PluginInfo as the plug-in list/show APIs return them, `plugin_content` being the
JSON string APIG stores). Output: the policy as plain data, plus notes on everything that was left out or
guessed. Pure: text in, data out; scripts/apig-import does the files.

What maps to what:
- each operation (`get`, `put`, ..., `x-apigateway-any-method`) is one API: `operationId` its name, the
  path (with Swagger's `basePath`) its path, `info.title` its group;
- `x-apigateway-match-mode` -> match_mode, `x-apigateway-cors` -> cors, `x-apigateway-plugins` -> plugins
  (the cors and set_resp_headers plug-ins given; other types are noted and left out);
- `security` -> auth (none when absent, as APIG exports auth NONE), via the scheme's
  `x-apigateway-auth-type` (AppSigv1 -> app, IAM -> iam);
- `x-apigateway-backend` type MOCK -> a mock backend with `mockEndpoints.result-content` as its body, status
  200 and `Content-Type: application/json` (the export carries neither; APIG's documented mock answers
  show both); HTTP, HTTP-VPC and FUNCTION -> the upstream;
- the export's host (Swagger) or servers' hosts (OpenAPI 3), the group's domain names on APIG, become
  `groups: {TITLE: {domains: [...]}}`, so the APIs match only requests for them (leave them out with
  domains=False: the APIs then match any host);
- the operation's `schemes` (Swagger) or `servers` (OpenAPI 3; the path's or the root's when it has none),
  APIG's request protocol, -> req_protocol: http -> HTTP, https -> HTTPS, both or none -> BOTH;
- unmatched requests are rejected with APIG.0101, as on APIG;
- the plug-ins may also come in the export itself, under corsgate's root key `x-corsgate-plugins` (what
  scripts/cors-export apig writes), so one file round-trips; plug-ins given separately win.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from addon.core.routing import parse_path, route_signature
from addon.tools.apig_format import (
    APIG_GATEWAY,
    BACKEND,
    BOUND_PLUGINS,
    CORS_FIELDS,
    CORS_SWITCH,
    MATCH_MODE,
    MOCK_HEADERS,
    MOCK_STATUS,
    NO_ORIGIN,
    OPERATIONS,
    PLUGIN_DEFINITIONS,
    RESP_HEADER_FIELDS,
    RESP_HEADERS,
    SECURITY_SCHEMES,
)


class ApigImportError(ValueError):
    """The input is not something APIG exports."""


@dataclass(frozen=True, slots=True)
class Plugins:
    """The plug-ins given: cors and set_resp_headers ones converted (by name, in `cors`), the names of the others,
    and notes."""

    cors: dict[str, dict[str, Any]]
    other: frozenset[str]
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Imported:
    """A converted policy (plain data, in the policy file's shape) and what the conversion had to say."""

    policy: dict[str, Any]
    notes: tuple[str, ...]


def read_document(text: str, source: str) -> Any:
    """An export or plug-in file: JSON or YAML."""
    document = _json(text)
    if document is not None:
        return document
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        raise ApigImportError(f"{source}: neither JSON nor YAML: {e}") from None


def plugins_from(documents: Iterable[Any]) -> Plugins:
    """The plug-ins in plug-in documents: a list response {"plugins": [...]}, a list of PluginInfo or
    AttachedPluginInfo objects, or one of them. Other types than cors are noted and left out."""
    found: dict[str, dict[str, Any]] = {}
    other: set[str] = set()
    notes: list[str] = []
    for document in documents:
        items = document.get("plugins") if isinstance(document, Mapping) and "plugins" in document else document
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, Mapping) or "plugin_name" not in item or "plugin_type" not in item:
                raise ApigImportError(f"not an APIG plug-in object (plugin_name, plugin_type, ...): {item!r:.200}")
            name, kind = str(item["plugin_name"]), str(item["plugin_type"])
            if kind not in CONVERTERS:
                other.add(name)
                notes.append(f"plug-in {name!r} is of type {kind!r}; corsgate implements "
                             f"{' and '.join(map(repr, CONVERTERS))}, left out")
                continue
            content, form = _plugin_content(name, item.get("plugin_content"))
            if form != "a JSON string":
                notes.append(f"plug-in {name!r}: plugin_content was {form}, read as its JSON")
            found[name] = CONVERTERS[kind](name, content, notes)
    return Plugins(found, frozenset(other), tuple(notes))


def _plugin_content(name: str, raw: Any) -> tuple[Mapping[str, Any], str]:
    """plugin_content as APIG stores it (a JSON string), or as documentation examples mangle it."""
    if isinstance(raw, Mapping):
        return raw, "a JSON object"
    if isinstance(raw, str):
        value = _json(raw)
        if isinstance(value, Mapping):
            return value, "a JSON string"
        inner = _json(value) if isinstance(value, str) else _json(raw.replace('\\"', '"'))
        if isinstance(inner, Mapping):
            return inner, "a JSON string inside a string" if isinstance(value, str) else "JSON with escaped quotes"
    raise ApigImportError(f"plug-in {name!r}: plugin_content is not a JSON object or a JSON string of one")


def _mapping(value: Any) -> Mapping[str, Any]:
    """An object of the document, or an empty one where the document has something else."""
    return value if isinstance(value, Mapping) else {}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _cors_content(name: str, content: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    """CorsPluginContent's six fields, as given; anything else is noted and left out."""
    extra = sorted(set(content) - set(CORS_FIELDS))
    if extra:
        notes.append(f"plug-in {name!r}: fields {', '.join(extra)} are not CorsPluginContent, left out")
    fields = {key: content[key] for key in CORS_FIELDS if key in content}
    origins = content.get("allow_origin")
    if origins == NO_ORIGIN:  # what cors-export apig writes for a plug-in that admits no origin
        del fields["allow_origin"]
        notes.append(f"plug-in {name!r}: allow_origin {NO_ORIGIN} (no page has it) is imported as an empty allow "
                     "list, which admits no origin (cors-lint origin-admits-none)")
    elif origins is None or (isinstance(origins, str) and not origins.strip()):
        notes.append(f"plug-in {name!r}: APIG requires allow_origin, this one has none: imported as an empty "
                     "allow list, which admits no origin (cors-lint origin-admits-none); list the callers' "
                     "origins or add allow_origin_regex")
    return {"type": "cors", "content": fields}


def _resp_headers_content(name: str, content: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    """SetRespHeadersContent: each HeaderPolicy's name, value and action; system parameters are left out."""
    extra = sorted(set(content) - {RESP_HEADERS})
    if extra:
        notes.append(f"plug-in {name!r}: fields {', '.join(extra)} are not SetRespHeadersContent, left out")
    headers = []
    items = content.get(RESP_HEADERS)
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            notes.append(f"plug-in {name!r}: response header {item!r:.60} is not an object, left out")
            continue
        if str(item.get("value_type") or "custom_value").lower() != "custom_value":
            notes.append(f"plug-in {name!r}: header {item.get('name')!r} takes its value from a system parameter "
                         f"({item.get('value')!r}), which corsgate does not have: left out")
            continue
        headers.append({key: item[key] for key in RESP_HEADER_FIELDS if key in item})
    return {"type": "set_resp_headers", "content": {RESP_HEADERS: headers}}


CONVERTERS = {"cors": _cors_content, "set_resp_headers": _resp_headers_content}


def convert(export: Any, plugins: Plugins | None = None, domains: bool = True) -> Imported:
    """The policy for an APIG export and the plug-ins its APIs are bound to; domains: the group's domain names
    from the export's host or servers."""
    if not isinstance(export, Mapping) or not ("swagger" in export or "openapi" in export):
        raise ApigImportError("not a Swagger 2.0 or OpenAPI 3.0 document (no 'swagger' or 'openapi' key)")
    plugins = _with_embedded(export, plugins or Plugins({}, frozenset(), ()))
    notes = list(plugins.notes)
    info = _mapping(export.get("info"))
    group = str(info.get("title") or "")
    base = str(export.get("basePath") or "").rstrip("/") if "swagger" in export else ""
    components = _mapping(export.get("components"))
    schemes = _mapping(export.get("securityDefinitions") or components.get("securitySchemes"))
    apis = []
    routes: dict[tuple[object, ...], str] = {}
    for path, item in _mapping(export.get("paths")).items():
        if not isinstance(item, Mapping):
            continue
        for key, operation in item.items():
            method = OPERATIONS.get(str(key).lower())
            if method is None or not isinstance(operation, Mapping):
                continue  # parameters, servers, summary ...
            full = (base + str(path)) or "/"
            label = f"{method} {full}"
            try:
                parse_path(full)
            except ValueError as e:
                notes.append(f"{label} left out: {e}")
                continue
            mode = _match_mode(operation, label, notes)
            name = str(operation.get("operationId") or label)
            route = route_signature(None, method, full, mode)
            if route in routes:  # /a/{x} next to /a/{y}: the same route to corsgate, a load error if kept
                notes.append(f"{label} left out: it matches the same requests as API {routes[route]!r}")
                continue
            routes[route] = name
            api = {"name": name, "group": group, "method": method, "path": full, "match_mode": mode,
                   "req_protocol": _protocol(export, item, operation),
                   "cors": operation.get(CORS_SWITCH) is True,
                   "auth": _auth(operation.get("security", export.get("security")), schemes, label, notes)}
            bound = _bound_plugins(operation.get(BOUND_PLUGINS), plugins, label, notes)
            if bound:
                api["plugins"] = bound
            backend = _backend(operation.get(BACKEND), label, notes)
            if backend:
                api["backend"] = backend
            apis.append(api)
    if not apis:
        raise ApigImportError("the export has no operations under 'paths'")
    policy: dict[str, Any] = {
        "version": 1,
        "gateway": dict(APIG_GATEWAY),
        "plugins": dict(plugins.cors),
    }
    hosts = _domains(export) if domains else []
    if hosts:
        policy["groups"] = {group: {"domains": hosts}}
        notes.append(f"group {group!r} is bound to {', '.join(hosts)} (the export's host): its APIs match only "
                     "requests for it; in reverse mode set keep_host_header=true, or import with --any-host")
    policy["apis"] = apis
    return Imported(policy, tuple(notes))


def _schemes(export: Mapping[str, Any], item: Mapping[str, Any], operation: Mapping[str, Any]) -> set[str]:
    """The URL schemes an operation is served on: Swagger's `schemes`, OpenAPI 3's `servers`, innermost first."""
    if "swagger" in export:
        found = operation.get("schemes") or export.get("schemes") or []
        return {str(s).lower() for s in found} if isinstance(found, list) else set()
    for holder in (operation, item, export):
        servers = holder.get("servers")
        if isinstance(servers, list) and servers:
            return {str(_mapping(s).get("url", "")).split("://", 1)[0].lower() for s in servers} - {""}
    return set()


def _protocol(export: Mapping[str, Any], item: Mapping[str, Any], operation: Mapping[str, Any]) -> str:
    schemes = _schemes(export, item, operation) & {"http", "https"}
    return schemes.pop().upper() if len(schemes) == 1 else "BOTH"


def _domains(export: Mapping[str, Any]) -> list[str]:
    """The group's domains: Swagger's host, or the hosts of OpenAPI 3's root servers (ports dropped)."""
    if "swagger" in export:
        urls = [f"//{export['host']}"] if export.get("host") else []
    else:
        servers = export.get("servers")
        urls = [str(_mapping(s).get("url", "")) for s in servers] if isinstance(servers, list) else []
    hosts: dict[str, None] = {}
    for url in urls:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
        if host:
            hosts[host] = None
    return list(hosts)


def _with_embedded(export: Mapping[str, Any], given: Plugins) -> Plugins:
    """The plug-ins cors-export writes into the export itself, under the ones given separately (which win)."""
    if PLUGIN_DEFINITIONS not in export:
        return given
    embedded = plugins_from([export[PLUGIN_DEFINITIONS]])
    notes = [*embedded.notes, *given.notes]
    notes.extend(f"plug-in {name!r}: the one given with --plugins replaces the export's {PLUGIN_DEFINITIONS}"
                 for name in sorted(set(embedded.cors) & set(given.cors)))
    return Plugins({**embedded.cors, **given.cors}, embedded.other | given.other, tuple(notes))


def _match_mode(operation: Mapping[str, Any], label: str, notes: list[str]) -> str:
    mode = str(operation.get(MATCH_MODE) or "NORMAL").upper()
    if mode not in ("NORMAL", "SWA"):
        notes.append(f"{label}: match mode {mode!r} is not NORMAL or SWA, imported as NORMAL")
        return "NORMAL"
    return mode


def _auth(requirements: Any, schemes: Mapping[str, Any], label: str, notes: list[str]) -> str:
    """APIG exports auth NONE as no `security` at all; App and IAM name their security scheme."""
    requirements = requirements if isinstance(requirements, list) else ()
    names = [name for requirement in requirements if isinstance(requirement, Mapping) for name in requirement]
    for name in names:
        scheme = _mapping(schemes.get(name))
        kind = str(scheme.get("x-apigateway-auth-type", "")).upper()
        if kind == "IAM" or name == SECURITY_SCHEMES["iam"][0]:
            return "iam"
        if kind.startswith("APPSIG") or name.startswith(SECURITY_SCHEMES["app"][0]):
            return "app"
    if names:
        notes.append(f"{label}: security {', '.join(names)} is neither App nor IAM auth, imported as auth none")
    return "none"


def _bound_plugins(names: Any, plugins: Plugins, label: str, notes: list[str]) -> list[str]:
    """The bound plug-ins corsgate implements; one that was not given is noted (its content is not in the export)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list):
        if names is not None:
            notes.append(f"{label}: {BOUND_PLUGINS} is not a list of plug-in names, left out")
        return []
    bound: dict[str, str] = {}  # plug-in type -> name: APIG binds one plug-in of a type; a second would not load
    for name in map(str, names):
        if name in plugins.cors:
            kind = plugins.cors[name]["type"]
            if kind not in bound:
                bound[kind] = name
            elif bound[kind] != name:
                notes.append(f"{label}: plug-in {name!r} left out: an API takes one {kind} plug-in, {bound[kind]!r}")
        elif name not in plugins.other:
            notes.append(f"{label}: bound plug-in {name!r} left out: give its JSON with --plugins")
    return list(bound.values())


def _backend(backend: Any, label: str, notes: list[str]) -> dict[str, Any] | None:
    """A mock backend for MOCK; None (the upstream) for everything else, including a `spec` export's none."""
    if not isinstance(backend, Mapping):
        return None
    kind = str(backend.get("type") or "").upper()
    if kind == "MOCK":
        mock = _mapping(backend.get("mockEndpoints"))
        body = mock.get("result-content", "")
        return {"type": "mock", "status": MOCK_STATUS, "body": body if isinstance(body, str) else json.dumps(body),
                "headers": dict(MOCK_HEADERS)}
    if kind not in ("", "HTTP", "HTTP-VPC"):
        notes.append(f"{label}: backend type {kind} becomes the upstream behind the proxy")
    return None


def to_json(imported: Imported) -> str:
    """The policy as a JSON file, for policies past the loader's YAML size cap (JSON has no comments: the notes
    go to stderr only)."""
    return json.dumps(imported.policy, indent=2, ensure_ascii=False) + "\n"


def to_yaml(imported: Imported, header: Iterable[str] = ()) -> str:
    """The policy as a YAML file: header comment lines, the notes as comments, then the policy."""
    out = io.StringIO()
    for line in (*header, *(f"note: {n}" for n in imported.notes)):
        out.write("# " + line.replace("\n", " ") + "\n")
    yaml = YAML(typ="rt")  # keeps the policy's key order
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump(_quoted_breaks(imported.policy), out)
    return out.getvalue()


_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")


def _quoted_breaks(value: Any) -> Any:
    """Strings holding a Unicode line break (NEL, LS, PS) double-quoted, where YAML escapes them: ruamel writes
    them raw in a single-quoted scalar, which a reader folds (a lone NEL came back as a space)."""
    if isinstance(value, str):
        return DoubleQuotedScalarString(value) if any(b in value for b in _UNICODE_BREAKS) else value
    if isinstance(value, Mapping):
        return {_quoted_breaks(k): _quoted_breaks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted_breaks(v) for v in value]
    return value
