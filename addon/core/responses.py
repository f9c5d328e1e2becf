"""Responses the gateway makes itself: mock backends, APIG-style errors, request ids.

Pure values (status, header pairs, body); gateway.py turns them into mitmproxy
responses. Error bodies follow APIG's gateway-response template:
{"error_code": ..., "error_msg": ..., "request_id": ...}.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class GatewayError:
    """One APIG gateway-response type."""

    status: int
    code: str
    message: str


API_NOT_FOUND = GatewayError(404, "APIG.0101", "The API does not exist or has not been published in the environment.")
BACKEND_UNAVAILABLE = GatewayError(502, "APIG.0201", "Backend unavailable.")
BACKEND_TIMEOUT = GatewayError(504, "APIG.0201", "Backend timeout.")
IAM_AUTH_MISSING = GatewayError(401, "APIG.0301", "Incorrect IAM authentication information: Authorization not found.")
APP_AUTH_MISSING = GatewayError(401, "APIG.0303", "Incorrect app authentication information: Authorization not found.")
# APIG does not document how its CORS layer refuses an origin; this code is corsgate's own.
ORIGIN_NOT_ALLOWED = GatewayError(403, "CORSGATE.0403", "Origin is not allowed by the CORS policy.")


@dataclass(frozen=True, slots=True)
class GatewayResponse:
    """A response the gateway sends instead of (or before reaching) the upstream."""

    status: int
    headers: Headers
    body: bytes


def new_request_id() -> str:
    """32 lowercase hex digits, as APIG's X-Request-Id."""
    return os.urandom(16).hex()


def error_response(error: GatewayError, request_id: str, detail: str = "") -> GatewayResponse:
    """An APIG-style JSON error; detail, when given, is appended to the message."""
    message = f"{error.message[:-1]}: {detail}" if detail else error.message
    body = json.dumps({"error_code": error.code, "error_msg": message, "request_id": request_id}).encode()
    return GatewayResponse(error.status, (("Content-Type", "application/json"),), body)


def mock_response(status: int, body: str, headers: dict[str, str]) -> GatewayResponse:
    """An API's mock backend answer, as configured."""
    return GatewayResponse(status, tuple(headers.items()), body.encode())
