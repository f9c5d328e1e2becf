"""The one-pass field readers and editors agree with what they replace, on arbitrary field lists.

rawheaders.py and verdict.diagnose_raw exist for speed only: each must give exactly what
mitmproxy's `Headers` (get, get_all, set, del, pretty_host) and verdict.diagnose give.
mitmproxy itself is the oracle here.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.net.http import url

from addon import verdict
from addon.core import rawheaders
from tests.property.common import fixed

# Names drawn mostly from the ones that matter, in any case, plus arbitrary tokens and bytes.
NAMES = st.one_of(
    st.sampled_from([
        "Origin", "origin", "ORIGIN", "Host", "Vary", "vary", "Authorization", "Cookie", "Location",
        "Access-Control-Request-Method", "access-control-request-headers", "Access-Control-Request-Private-Network",
        "Access-Control-Allow-Origin", "access-control-allow-origin", "Access-Control-Expose-Headers",
        "Access-Control-Allow-Credentials", "Sec-Fetch-Mode", "Sec-Fetch-Site", "X-Request-Id", "Server",
        "Content-Length", "Content-Type",
    ]),
    st.text("abcdefgXYZ-_", min_size=1, max_size=12),
)
VALUES = st.one_of(
    st.sampled_from(["", "*", "true", "null", "https://app.example.com", "GET", "PUT", " a , b ,", "Origin"]),
    st.binary(max_size=20).map(lambda b: b.decode("latin-1")),
)
FIELDS = st.lists(
    st.tuples(NAMES, VALUES).map(lambda nv: (rawheaders.raw(nv[0]), nv[1].encode("latin-1"))), max_size=10
)
SETS = st.lists(st.tuples(NAMES, VALUES), max_size=5, unique_by=lambda nv: nv[0].lower())


@fixed(400)
@given(FIELDS)
def test_read_and_joined_agree_with_headers_get(fields: list[tuple[bytes, bytes]]) -> None:
    headers = http.Headers(fields)
    found = rawheaders.read(fields)
    for name in (rawheaders.ORIGIN, rawheaders.REQUEST_METHOD, rawheaders.PRIVATE_NETWORK, rawheaders.HOST):
        assert rawheaders.joined(found, name) == headers.get(name.decode())
    assert found.get(rawheaders.REQUEST_HEADERS, []) == headers.get_all("access-control-request-headers")
    assert (rawheaders.AUTHORIZATION in found) == ("authorization" in headers)
    assert [rawheaders.text(v) for v in rawheaders.values_of(fields, rawheaders.VARY)] == headers.get_all("vary")


@fixed(400)
@given(FIELDS, SETS, st.booleans())
def test_edited_agrees_with_headers_set_in_turn(
    fields: list[tuple[bytes, bytes]], set_fields: list[tuple[str, str]], strip: bool
) -> None:
    headers = http.Headers(fields)
    if strip:
        for name in {k.decode("latin-1").lower() for k, _ in fields}:
            if name.startswith("access-control-"):
                del headers[name]
    for name, value in set_fields:
        headers[name] = value
    assert rawheaders.edited(fields, rawheaders.setting(set_fields), strip) == headers.fields


@fixed(400)
@given(st.one_of(
    st.sampled_from(["api.example.com", "API.example.com:8080", "[::1]", "[::1]:443", "127.0.0.1:3000", "a:b:c"]),
    st.from_regex(r"[a-z0-9.-]{1,20}(:[0-9]{1,5})?", fullmatch=True),
))
def test_authority_host_agrees_with_mitmproxy_for_valid_hosts(authority: str) -> None:
    host, _ = url.parse_authority(authority, check=False)
    refused_with_port = host == authority and ":" in authority  # mitmproxy keeps all of a host:port it refuses
    if not refused_with_port:
        assert rawheaders.authority_host(authority) == host


@fixed(300)
@given(st.sampled_from(["GET", "OPTIONS", "PUT"]), FIELDS, st.sampled_from([200, 204, 302, 403, 502]), FIELDS)
def test_diagnose_raw_agrees_with_diagnose(
    method: str, request: list[tuple[bytes, bytes]], status: int, response: list[tuple[bytes, bytes]]
) -> None:
    def text(fields: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]

    expected = verdict.diagnose(method, text(request), status, text(response))
    assert verdict.diagnose_raw(method, request, status, response) == expected
    assert verdict.diagnose_raw(method, request, status, response) == expected  # again, from memory
