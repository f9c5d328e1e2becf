"""The names of APIG's import/export format, shared by apig_import and apig_export so the two read as one family.

Facts and their sources are in shared/notes/apig-import.md. A change here changes both directions at once.
"""

from __future__ import annotations

from typing import Any

# An operation key under a path -> the API's method (ANY is APIG's own key, in place of a verb).
OPERATIONS = {
    "get": "GET", "post": "POST", "put": "PUT", "delete": "DELETE", "head": "HEAD", "patch": "PATCH",
    "options": "OPTIONS", "x-apigateway-any-method": "ANY",
}  # fmt: skip
OPERATION_KEYS = {method: key for key, method in OPERATIONS.items()}

MATCH_MODE = "x-apigateway-match-mode"
CORS_SWITCH = "x-apigateway-cors"
BOUND_PLUGINS = "x-apigateway-plugins"  # plug-in names, on an operation
BACKEND = "x-apigateway-backend"
# corsgate's own root key: the CORS plug-ins as APIG's create-plug-in API takes them (PluginInfo: plugin_name,
# plugin_type, plugin_scope, plugin_content as a JSON string), so one exported file carries APIs and plug-ins.
# APIG's import ignores it (the export format has no place for plug-in bodies); apig_import reads it.
PLUGIN_DEFINITIONS = "x-corsgate-plugins"

# APIG's CorsPluginContent: the only fields its CORS plug-in has.
CORS_FIELDS = ("allow_origin", "allow_methods", "allow_headers", "expose_headers", "max_age", "allow_credentials")
MAX_AGE_LIMIT = 86400  # CorsPluginContent.max_age: 0-86400 s
# APIG requires allow_origin; a plug-in that admits no origin (or only by regex / 'null', which APIG lacks) is
# written with this one, which no page can have (.invalid never resolves, RFC 6761), and read back as none.
NO_ORIGIN = "https://no-caller.invalid"

# APIG's HTTP response header management plug-in: SetRespHeadersContent.response_headers, each a HeaderPolicy.
RESP_HEADERS = "response_headers"
RESP_HEADER_FIELDS = ("name", "value", "action")

# An API's req_protocol <-> an operation's Swagger `schemes`.
PROTOCOL_SCHEMES = {"HTTP": ["http"], "HTTPS": ["https"], "BOTH": ["http", "https"]}

# What an APIG mock backend answers: the export carries only the body (`result-content`); APIG's documented
# mock answers are 200 with a JSON content type.
MOCK_STATUS = 200
MOCK_HEADERS = {"Content-Type": "application/json"}

# Gateway-wide behaviour APIG has and cannot be told otherwise: an X-Request-Id on every response, its own
# Server header on responses it makes, and APIG.0101 404 for a request that hits no API.
APIG_GATEWAY: dict[str, Any] = {"request_id": True, "server": "api-gateway", "unmatched": "reject"}

# Security schemes by corsgate's auth value; APIG exports auth NONE as no `security` at all.
SECURITY_SCHEMES: dict[str, tuple[str, dict[str, Any]]] = {
    "app": ("apig-auth-app", {"type": "apiKey", "name": "Authorization", "in": "header",
                              "x-apigateway-auth-type": "AppSigv1"}),
    "iam": ("apig-auth-iam", {"type": "apiKey", "name": "unused", "in": "header", "x-apigateway-auth-type": "IAM"}),
}
