"""Hostile traffic against a real mitmdump with the addon (issue 7): the proxy keeps serving and reflects nothing.

A bounded, seeded stream of malformed and adversarial requests goes out on raw sockets
(HTTP/1.1) and over TLS as HTTP/2 (the `h2` package mitmproxy brings, with its own
header validation off), interleaved with good requests whose answers are checked
field by field. Every answer, good or not, is parsed from the raw bytes and must be
well-formed, carry no injected field and reflect no origin the policy does not admit.
At the end mitmdump must be alive with no traceback and no "corsgate: could not" in
its log; the closing note counts each class. A second test swaps hostile policy files
under a running proxy: each is refused and the first policy keeps answering.

The HTTP/2 malformations go to two proxies: one as users run it (mitmproxy's
validate_inbound_headers on: h2 refuses them before any hook) and one with it off, so
they reach the addon.
"""

from __future__ import annotations

import random
import re
import socket
import ssl
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest

from tests.support.procs import Backend, Proxy

SEED = 7
HTTP1_REQUESTS = 5000  # the stream on raw sockets, good requests included
H2_REQUESTS = 120  # per proxy
GOOD_EVERY = 4  # one good request after every three adversarial ones
CLIENT_THREADS = 3
SOCKET_TIMEOUT = 10.0
MAX_HEAD = 1 << 20

ALLOWED = "https://app.example.com"
POLICY = """\
version: 1
gateway: {request_id: true, server: api-gateway, unmatched: pass}
plugins:
  strict:
    type: cors
    content:
      allow_origin: "https://app.example.com,https://*.example.com"
      allow_methods: GET,POST,PUT,DELETE
      allow_headers: Content-Type,X-Requested-With
      expose_headers: X-Request-Id
      max_age: 600
      allow_credentials: true
      precedence: gateway
  debug:
    type: cors
    content: {allow_origin: "*", allow_methods: "*", allow_headers: "*", expose_headers: "*", max_age: 7200,
              allow_credentials: true}
apis:
  - {name: api, method: ANY, path: /api, match_mode: SWA, plugins: [strict]}
  - {name: debug, method: ANY, path: /debug, match_mode: SWA, plugins: [debug]}
  - {name: apig-preflight, method: OPTIONS, path: /apig, match_mode: SWA, cors: true,
     backend: {type: mock, status: 200, body: "", headers: {Content-Type: application/json}}}
  - {name: apig-get, method: GET, path: /apig, match_mode: SWA, cors: true}
"""
STRICT_METHODS = "GET,POST,PUT,DELETE"
STRICT_HEADERS = "Content-Type,X-Requested-With"
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff](?:[\x20\x09\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
LOG_FAILURES = ("Traceback", "corsgate: could not", "Addon error", "--- Logging error ---")
INJECTED = ("x-injected", "set-cookie")

# Origin values: (bytes sent, admitted by the strict plug-in on /api, admitted by the '*' plug-in on /debug).
ORIGINS: list[tuple[bytes, bool, bool]] = [
    (b"https://app.example.com", True, True),
    (b"https://deep.sub.example.com", True, True),
    (b"HTTPS://APP.EXAMPLE.COM", True, True),
    (b"https://app.example.com:443", True, True),
    (b"https://example.com", False, True),
    (b"https://badexample.com", False, True),
    (b"https://app.example.com.evil.net", False, True),
    (b"https://evil.net#.example.com", False, False),
    (b"https://evil.net/.example.com", False, False),
    (b"https://evil.net?.example.com", False, False),
    (b"https://app.example.com@evil.net", False, False),
    (b"https://evil.net\\.example.com", False, False),
    (b"https://evil%2eexample.com", False, False),
    (b"https://app.example.com.", False, False),
    (b"https://app.example.com/", False, False),
    (b"https://app.example.com:8443", False, True),
    (b"http://app.example.com", False, True),
    (b"https://app.example.com:0443", False, False),
    (b"https://app.example.com:", False, False),
    (b"https://app.example.com:99999", False, False),
    (b"https://[::1]", False, True),
    (b"https://[:]", False, False),
    (b"https://1.2.3.256", False, False),
    (b"null", False, False),
    (b"NULL", False, False),
    (b"*", False, False),
    (b"", False, False),
    (b" https://app.example.com", True, True),  # surrounding whitespace is not part of a field value
    (b"https://app.example.com https://evil.net", False, False),
    (b"https://app.example.com, https://evil.net", False, False),
    (b"https://b\xc3\xbccher.example.com", False, False),
    (b"https://xn--bcher-kva.example.com", True, True),
    (b"https://app.example.com\xff", False, False),
    (b"https://app.\x00example.com", False, False),
    (b"https://" + b"a" * 8000 + b".example.com", False, False),
    (b"https://" + b"a." * 1000 + b"example.com", True, True),
    (b"javascript://app.example.com", False, False),  # no default port: not an origin corsgate admits
    (b"file://", False, False),
    # The other origins the stream sends (good requests, repeated fields, preflights).
    (b"https://x.example.com", True, True),
    (b"https://sub.example.com", True, True),
    (b"https://evil.net", False, True),
    (b"http://localhost:5173", False, True),
    (b"https://any.test", False, True),
]
METHODS = [b"get", b"GE T", b"G\x00ET", b"\xc3\x84GET", b"PRI", b"CONNECT", b"TRACE", b"TRACK", b"", b"M" * 8000,
           b"GET/", b"(GET)", b"PUT:", b"PATCH", b"patch", b"DELETE\t"]
PATHS = [b"/api/items", b"/debug/x", b"/apig/x", b"/other"]


@dataclass
class Case:
    """One request: its class, bytes on the wire, and what its answer must satisfy."""

    cls: str
    raw: bytes
    path: bytes = b"/"
    origins: list[bytes] = field(default_factory=list)  # every Origin field sent
    method: bytes = b"GET"
    acrm: bytes | None = None
    acrh: list[bytes] = field(default_factory=list)
    must_answer: bool = False  # a well-formed request: an HTTP response must come back
    check: Callable[[Reply], None] | None = None  # exact expectations (good requests)


@dataclass
class Reply:
    status: int
    fields: list[tuple[bytes, bytes]]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [v.decode("latin-1") for k, v in self.fields if k.lower() == name.lower().encode()]


# -- building the stream ---------------------------------------------------------------------------

def request(method: bytes, target: bytes, fields: list[tuple[bytes, bytes]], eol: bytes = b"\r\n") -> bytes:
    head = [method + b" " + target + b" HTTP/1.1", b"Host: api.example.com"]
    head += [k + b": " + v for k, v in fields]
    return eol.join(head) + eol + eol


def case(cls: str, method: bytes, path: bytes, fields: list[tuple[bytes, bytes]], **kw: object) -> Case:
    """A Case for these fields; `origins` may say what the proxy parses when the bytes are ambiguous."""
    origins = kw.pop("origins", None) or [v for k, v in fields if k.lower() == b"origin"]
    acrm = next((v for k, v in fields if k.lower() == b"access-control-request-method"), None)
    acrh = [v for k, v in fields if k.lower() == b"access-control-request-headers"]
    raw = kw.pop("raw", None) or request(method, path, fields)
    return Case(cls, raw, path, origins, method, acrm, acrh, **kw)  # type: ignore[arg-type]


def adversarial(rnd: random.Random) -> Iterator[Case]:
    """An endless, seeded mix of the adversarial classes."""
    makers: list[Callable[[random.Random], Case]] = [
        bad_origin, repeated_origin, huge_headers, invalid_method, options_without_origin, forbidden_preflight,
        crlf, non_ascii,
    ]
    while True:
        yield rnd.choice(makers)(rnd)


def bad_origin(rnd: random.Random) -> Case:
    origin = rnd.choice(ORIGINS)[0]
    method = rnd.choice([b"GET", b"POST", b"OPTIONS"])
    fields = [(b"Origin", origin)]
    if method == b"OPTIONS":
        fields.append((b"Access-Control-Request-Method", rnd.choice([b"PUT", b"GET", b"DELETE"])))
    return case("bad-origin", method, rnd.choice(PATHS), fields, must_answer=True)


def repeated_origin(rnd: random.Random) -> Case:
    pair = rnd.sample([ALLOWED.encode(), b"https://evil.net", b"https://sub.example.com", ALLOWED.encode()], 2)
    names = rnd.choice([(b"Origin", b"Origin"), (b"Origin", b"origin"), (b"ORIGIN", b"Origin")])
    fields = list(zip(names, pair))
    method = rnd.choice([b"GET", b"OPTIONS"])
    if method == b"OPTIONS":
        fields.append((b"Access-Control-Request-Method", b"PUT"))
    return case("repeated-origin", method, rnd.choice(PATHS), fields, must_answer=True)


def huge_headers(rnd: random.Random) -> Case:
    shape = rnd.choice(["many-fields", "many-names", "long-value", "many-acrh-fields"])
    fields = [(b"Origin", rnd.choice([ALLOWED.encode(), b"https://evil.net"]))]
    if shape == "many-fields":
        fields += [(b"X-Filler-%d" % i, b"v" * rnd.randint(1, 40)) for i in range(rnd.randint(100, 800))]
    elif shape == "many-names":
        names = b",".join(rnd.choice([b"x-h%d" % i, b"X-H%d" % i, b"", b" ", b"content-type"]) for i in range(5000))
        fields += [(b"Access-Control-Request-Method", b"PUT"), (b"Access-Control-Request-Headers", names)]
    elif shape == "long-value":
        fields += [(b"Access-Control-Request-Method", b"PUT"), (b"Access-Control-Request-Headers", b"x" * 60000)]
    else:
        fields += [(b"Access-Control-Request-Method", b"PUT")]
        fields += [(b"Access-Control-Request-Headers", b"x-a, X-A ,, x-b") for _ in range(300)]
    method = b"OPTIONS" if any(k == b"Access-Control-Request-Method" for k, _ in fields) else b"GET"
    return case("huge-headers", method, rnd.choice(PATHS), fields)


def invalid_method(rnd: random.Random) -> Case:
    method = rnd.choice(METHODS)
    return case("invalid-method", method, rnd.choice(PATHS), [(b"Origin", rnd.choice([ALLOWED.encode(),
                                                                                      b"https://evil.net"]))])


def options_without_origin(rnd: random.Random) -> Case:
    fields: list[tuple[bytes, bytes]] = []
    if rnd.random() < 0.5:
        fields.append((b"Access-Control-Request-Method", rnd.choice([b"PUT", b"GET", b"CONNECT"])))
    if rnd.random() < 0.3:
        fields.append((b"Access-Control-Request-Headers", b"content-type"))
    target = b"*" if rnd.random() < 0.1 else rnd.choice(PATHS)
    return case("options-no-origin", b"OPTIONS", target, fields, must_answer=target != b"*")


def forbidden_preflight(rnd: random.Random) -> Case:
    acrm = rnd.choice([b"CONNECT", b"TRACE", b"TRACK", b"connect", b"trace"])
    fields = [(b"Origin", rnd.choice([ALLOWED.encode(), b"https://x.example.com", b"https://evil.net"])),
              (b"Access-Control-Request-Method", acrm)]
    if rnd.random() < 0.5:
        fields.append((b"Access-Control-Request-Headers", b"content-type,x-requested-with"))
    return case("preflight-connect-trace", b"OPTIONS", rnd.choice(PATHS), fields, must_answer=True)


def crlf(rnd: random.Random) -> Case:
    path = rnd.choice(PATHS)
    shape = rnd.choice(["bare-cr-origin", "obs-fold-origin", "obs-fold-acrh", "obs-fold-acrm", "acrm-injection",
                        "encoded-path", "cr-in-path", "lf-only", "bare-lf-in-value", "nul-in-value"])
    acrm = [(b"Access-Control-Request-Method", b"PUT")]
    if shape == "bare-cr-origin":
        return case("crlf", b"GET", path, [(b"Origin", ALLOWED.encode() + b"\rX-Injected: 1")])
    if shape == "obs-fold-origin":
        return case("crlf", b"GET", path, [(b"Origin", ALLOWED.encode() + b"\r\n X-Injected: 1")])
    if shape == "obs-fold-acrh":
        return case("crlf", b"OPTIONS", path, [(b"Origin", ALLOWED.encode()), *acrm,
                                               (b"Access-Control-Request-Headers", b"content-type\r\n X-Injected: 1")])
    if shape == "obs-fold-acrm":
        return case("crlf", b"OPTIONS", path, [(b"Origin", ALLOWED.encode()),
                                               (b"Access-Control-Request-Method", b"PUT\r\n X-Injected: 1")])
    if shape == "acrm-injection":  # CR LF after the method: a request field of its own, which must not come back
        return case("crlf", b"OPTIONS", path, [(b"Origin", ALLOWED.encode()),
                                               (b"Access-Control-Request-Method", b"PUT"), (b"X-Injected", b"1")])
    if shape == "encoded-path":
        return case("crlf", b"GET", path + b"%0d%0aX-Injected:%201", [(b"Origin", ALLOWED.encode())])
    if shape == "cr-in-path":
        return case("crlf", b"GET", path + b"\rX-Injected: 1", [(b"Origin", ALLOWED.encode())])
    if shape == "lf-only":
        return case("crlf", b"GET", path, [(b"Origin", ALLOWED.encode())],
                    raw=request(b"GET", path, [(b"Origin", ALLOWED.encode())], eol=b"\n"))
    if shape == "bare-lf-in-value":  # mitmproxy ends a line at a bare LF: the Origin it sees is the allowed one
        return case("crlf", b"GET", path, [(b"Origin", ALLOWED.encode() + b"\nX-Injected: 1")],
                    origins=[ALLOWED.encode()])
    return case("crlf", b"OPTIONS", path, [(b"Origin", ALLOWED.encode()),
                                           (b"Access-Control-Request-Method", b"P\x00UT"),
                                           (b"Access-Control-Request-Headers", b"x-a\x00, x-b")])


def non_ascii(rnd: random.Random) -> Case:
    where = rnd.choice(["origin", "acrh", "acrm", "path", "host", "latin1"])
    origin = ALLOWED.encode()
    fields = [(b"Origin", origin)]
    path = rnd.choice(PATHS)
    method = b"GET"
    if where == "origin":
        fields = [(b"Origin", "https://ápp.example.com".encode())]
    elif where in ("acrh", "acrm"):
        method = b"OPTIONS"
        fields += [(b"Access-Control-Request-Method", "PÜT".encode() if where == "acrm" else b"PUT")]
        if where == "acrh":
            fields += [(b"Access-Control-Request-Headers", "x-ä, content-type, \u2028".encode())]
    elif where == "path":
        path += "/ä/\u202e".encode()
    elif where == "host":
        fields += [(b"X-Forwarded-Host", "hÖst".encode())]
    else:
        fields += [(b"Access-Control-Request-Headers", b"x-\xe9\xff")]
        method = b"OPTIONS"
        fields += [(b"Access-Control-Request-Method", b"PUT")]
    return case("non-ascii", method, path, fields)


def good(rnd: random.Random, n: int) -> Case:
    """A request a browser makes, with the exact answer it must get."""
    kind = n % 7
    if kind == 0:
        return case("good", b"GET", b"/api/items?n=%d" % n, [(b"Origin", ALLOWED.encode())], check=good_actual)
    if kind == 1:
        fields = [(b"Origin", b"https://x.example.com"), (b"Access-Control-Request-Method", b"PUT"),
                  (b"Access-Control-Request-Headers", b"content-type")]
        return case("good", b"OPTIONS", b"/api/items", fields, check=good_preflight)
    if kind == 2:
        return case("good", b"GET", b"/api/items", [(b"Origin", b"https://evil.net")], check=good_refused_actual)
    if kind == 3:
        fields = [(b"Origin", b"https://evil.net"), (b"Access-Control-Request-Method", b"PUT")]
        return case("good", b"OPTIONS", b"/api/items", fields, check=good_refused_preflight)
    if kind == 4:
        return case("good", b"GET", b"/debug/x", [(b"Origin", b"http://localhost:5173")], check=good_debug)
    if kind == 5:
        fields = [(b"Origin", b"https://any.test"), (b"Access-Control-Request-Method", b"PUT")]
        return case("good", b"OPTIONS", b"/apig/x", fields, check=good_apig)
    return case("good", b"GET", b"/other", [], check=good_unmatched)


# -- exact expectations for good requests ------------------------------------------------------------

def good_actual(r: Reply) -> None:
    assert r.status == 200 and b'"path": "/api/items"' in r.body
    assert r.values("Access-Control-Allow-Origin") == [ALLOWED]
    assert r.values("Access-Control-Allow-Credentials") == ["true"]
    assert r.values("Access-Control-Expose-Headers") == ["X-Request-Id"]
    assert "Origin" in r.values("Vary")[0]
    assert REQUEST_ID.fullmatch(r.values("X-Request-Id")[0])


def good_preflight(r: Reply) -> None:
    assert r.status == 200 and r.body == b""
    assert r.values("Access-Control-Allow-Origin") == ["https://x.example.com"]
    assert r.values("Access-Control-Allow-Methods") == [STRICT_METHODS]
    assert r.values("Access-Control-Allow-Headers") == [STRICT_HEADERS]
    assert r.values("Access-Control-Max-Age") == ["600"]
    assert r.values("Access-Control-Allow-Credentials") == ["true"]


def good_refused_actual(r: Reply) -> None:
    assert r.status == 200 and b'"path": "/api/items"' in r.body
    assert not [k for k, _ in r.fields if k.lower().startswith(b"access-control-")]


def good_refused_preflight(r: Reply) -> None:
    assert r.status == 403 and b"CORSGATE.0403" in r.body
    assert not [k for k, _ in r.fields if k.lower().startswith(b"access-control-")]


def good_debug(r: Reply) -> None:
    assert r.status == 200 and b'"path": "/debug/x"' in r.body
    assert r.values("Access-Control-Allow-Origin") == ["http://localhost:5173"]
    assert r.values("Access-Control-Allow-Credentials") == ["true"]


def good_apig(r: Reply) -> None:
    assert r.status == 200
    assert r.values("Access-Control-Allow-Origin") == ["*"]
    assert r.values("Access-Control-Max-Age") == ["172800"]


def good_unmatched(r: Reply) -> None:
    assert r.status == 200 and b'"path": "/other"' in r.body
    assert not r.values("Access-Control-Allow-Origin") and not r.values("X-Request-Id")


# -- invariants for every answer -------------------------------------------------------------------

ADMITTED = {o.strip(b" \t"): (api, debug) for o, api, debug in ORIGINS}


def admitted(path: bytes, origin: bytes) -> bool:
    """Does the policy admit this Origin on this path? Only origins in the table can be; the proxy strips SP/HTAB."""
    api, debug = ADMITTED.get(origin.strip(b" \t"), (False, False))
    return debug if path.startswith(b"/debug") else api


def check_invariants(c: Case, r: Reply) -> None:
    """What holds for every answer: well-formed fields, nothing injected, only admitted origins echoed."""
    for name, value in r.fields:
        assert TOKEN.fullmatch(name) and FIELD_VALUE.fullmatch(value), f"malformed field {name!r}: {value!r:.200}"
        assert name.lower().decode() not in INJECTED, f"injected field {name!r} came back"
    acao = r.values("Access-Control-Allow-Origin")
    assert len(acao) <= 1, f"two Access-Control-Allow-Origin fields: {acao}"
    if r.values("Access-Control-Allow-Credentials"):
        assert acao, "credentials without an allowed origin"
    if not acao:
        return
    if acao == ["*"]:
        assert c.path.startswith(b"/apig") and not r.values("Access-Control-Allow-Credentials")
        return
    assert len(c.origins) == 1, f"{acao} echoed for {len(c.origins)} Origin fields"
    assert acao[0].encode("latin-1") == c.origins[0].strip(b" \t"), f"echoed {acao[0]!r}, sent {c.origins[0]!r:.100}"
    assert admitted(c.path, c.origins[0]), f"{c.origins[0]!r:.100} is not admitted on {c.path!r} but was echoed"
    methods = r.values("Access-Control-Allow-Methods")
    if methods and c.path.startswith(b"/api"):
        assert methods == [STRICT_METHODS], "the strict plug-in's methods are never echoed"
    elif methods and methods != ["*"]:  # '*' is the configured list, sent when the request's method is no token
        assert methods[0].encode("latin-1") == (c.acrm or b"").strip(b" \t") and TOKEN.fullmatch(methods[0].encode())
    allowed = r.values("Access-Control-Allow-Headers")
    if allowed and c.path.startswith(b"/api"):
        assert allowed == [STRICT_HEADERS]
    elif allowed:
        requested = {i.strip(b" \t") for v in c.acrh for i in v.split(b",")}
        assert all(TOKEN.fullmatch(i) and i in requested for i in allowed[0].encode("latin-1").split(b","))


# -- HTTP/1 on raw sockets ---------------------------------------------------------------------------

def read_reply(sock: socket.socket, head_request: bool) -> Reply | None:
    """One response from raw bytes: status line, fields (kept as bytes, in order), body by its framing."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
        assert len(buf) < MAX_HEAD, "response head larger than 1 MiB"
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    bad = [line for line in lines if b"\r" in line or b"\n" in line or b"\x00" in line]
    assert not bad, f"bare CR/LF/NUL in the response head: {head!r:.300}"
    status = int(lines[0].split(b" ", 2)[1])
    fields = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        assert sep, f"field line without a colon: {line!r:.200}"
        fields.append((name, value.strip(b" \t")))
    length = next((int(v) for k, v in fields if k.lower() == b"content-length"), None)
    chunked = any(k.lower() == b"transfer-encoding" and b"chunked" in v.lower() for k, v in fields)
    if head_request or status in (204, 304) or 100 <= status < 200:
        return Reply(status, fields, b"")
    if chunked:
        body = _read_chunked(sock, rest)
    else:
        while length is None or len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = rest if length is None else rest[:length]
    return Reply(status, fields, body)


def _read_chunked(sock: socket.socket, data: bytes) -> bytes:
    body = b""
    while True:
        while b"\r\n" not in data:
            data += _recv(sock)
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(data) < size + 2:
            data += _recv(sock)
        body, data = body + data[:size], data[size + 2:]
        if size == 0:
            return body


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionResetError("closed in the middle of a chunked body")
    return chunk


def exchange(port: int, c: Case) -> Reply | None:
    """One request on a fresh connection, so no request inherits another's connection state.

    (Fresh connections are also the fast path here: on a reused connection the test backend's
    two-write responses meet Nagle and delayed ACKs on the upstream side, 40 ms each.)
    """
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        try:
            sock.sendall(c.raw)
            return read_reply(sock, c.method == b"HEAD")
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            return None  # run_http1 accepts silence only for requests that are not well-formed


# -- HTTP/2 over TLS -----------------------------------------------------------------------------------

def h2_connect(port: int) -> tuple[ssl.SSLSocket, h2.connection.H2Connection]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # mitmproxy's own certificate; TLS is the transport here, not the subject
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT),
                           server_hostname="api.example.com")
    assert sock.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False, normalize_outbound_headers=False,
        validate_inbound_headers=False,
    ))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def h2_exchange(sock: ssl.SSLSocket, conn: h2.connection.H2Connection,
                headers: list[tuple[bytes, bytes]]) -> Reply | str:
    """One stream; a Reply, or how the proxy refused it ("reset", "goaway", "closed")."""
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, fields, body = 0, [], b""
    while True:
        data = sock.recv(65536)
        if not data:
            return "closed"
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            return "protocol-error"
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == stream:
                for k, v in ev.headers:
                    if k == b":status":
                        status = int(v)
                    else:
                        fields.append((k, v))
            elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == stream:
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, stream)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == stream:
                sock.sendall(conn.data_to_send())
                return Reply(status, fields, body)
            elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == stream:
                return "reset"
            elif isinstance(ev, h2.events.ConnectionTerminated):
                return "goaway"
        sock.sendall(conn.data_to_send())


H2_BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"api.example.com"), (b":path", b"/api/x")]


def h2_malformed(rnd: random.Random) -> tuple[str, list[tuple[bytes, bytes]]]:
    origin = [(b"origin", rnd.choice([ALLOWED.encode(), b"https://evil.net"]))]
    shape = rnd.choice(["uppercase-pseudo", "duplicate-path", "duplicate-method", "missing-path", "missing-scheme",
                        "unknown-pseudo", "pseudo-after-field", "uppercase-field", "connection-field", "crlf-value",
                        "nul-value", "empty-path", "relative-path", "two-origins", "bad-method", "many-fields",
                        "uppercase-origin-preflight"])
    base = list(H2_BASE)
    if shape == "uppercase-pseudo":
        return shape, [(b":Method", b"GET"), *base[1:], *origin]
    if shape == "duplicate-path":
        return shape, [*base, (b":path", b"/debug/x"), *origin]
    if shape == "duplicate-method":
        return shape, [(b":method", b"OPTIONS"), *base, *origin, (b"access-control-request-method", b"PUT")]
    if shape == "missing-path":
        return shape, [*base[:3], *origin]
    if shape == "missing-scheme":
        return shape, [base[0], *base[2:], *origin]
    if shape == "unknown-pseudo":
        return shape, [*base, (b":protocol", b"websocket"), *origin]
    if shape == "pseudo-after-field":
        return shape, [*base[:3], *origin, base[3]]
    if shape == "uppercase-field":
        return shape, [*base, (b"Origin", ALLOWED.encode())]
    if shape == "connection-field":
        return shape, [*base, *origin, (b"connection", b"keep-alive"), (b"transfer-encoding", b"chunked")]
    if shape == "crlf-value":
        return shape, [*base, (b"origin", ALLOWED.encode() + b"\r\nx-injected: 1")]
    if shape == "nul-value":
        return shape, [*base, (b"origin", ALLOWED.encode() + b"\x00")]
    if shape == "empty-path":
        return shape, [*base[:3], (b":path", b""), *origin]
    if shape == "relative-path":
        return shape, [*base[:3], (b":path", b"api/x"), *origin]
    if shape == "two-origins":
        return shape, [*base, (b"origin", ALLOWED.encode()), (b"origin", b"https://evil.net")]
    if shape == "bad-method":
        return shape, [(b":method", rnd.choice([b"G ET", b"get", b"", b"TRACE"])), *base[1:], *origin]
    if shape == "many-fields":
        return shape, [*base, *origin, *[(b"x-f%d" % i, b"v") for i in range(rnd.randint(100, 400))]]
    return shape, [(b":method", b"OPTIONS"), *base[1:], (b"ORIGIN", ALLOWED.encode()),
                   (b"access-control-request-method", b"CONNECT")]


def h2_case(headers: list[tuple[bytes, bytes]], shape: str) -> Case:
    """What an HTTP/2 request asked for, as check_invariants needs it (mitmproxy refuses repeated pseudo-headers)."""
    pseudo = {k: v for k, v in headers if k.startswith(b":")}
    origins = [v for k, v in headers if k.lower() == b"origin"]
    return Case(f"h2 {shape}", b"", pseudo.get(b":path", b"/"), origins, pseudo.get(b":method", b"GET"),
                next((v for k, v in headers if k.lower() == b"access-control-request-method"), None))


# -- the run -----------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Per-class outcome counts for the closing note."""

    sent: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, cls: str, outcome: str) -> None:
        self.sent[cls] += 1
        self.outcomes[cls][outcome] += 1

    def note(self) -> str:
        lines = [f"hostile stream (seed {SEED}): {sum(self.sent.values())} requests"]
        for cls in sorted(self.sent):
            detail = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes[cls].items()))
            lines.append(f"  {cls:30} {self.sent[cls]:5}  {detail}")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "hostile.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture(scope="module")
def proxy(policy_file: Path, backend: Backend, launcher: tuple[str, ...] | None) -> Iterator[Proxy]:
    with Proxy(policy_file, mode=f"reverse:{backend.url}", launcher=launcher) as p:
        yield p


@pytest.fixture(scope="module")
def lax_proxy(policy_file: Path, backend: Backend, launcher: tuple[str, ...] | None) -> Iterator[Proxy]:
    """mitmproxy's inbound header validation off: malformed HTTP/2 fields reach the addon."""
    with Proxy(policy_file, mode=f"reverse:{backend.url}", extra=["--set", "validate_inbound_headers=false"],
               launcher=launcher) as p:
        yield p


def http1_stream() -> list[Case]:
    """The seeded HTTP/1 stream: three adversarial requests, then a good one, and so on."""
    rnd = random.Random(SEED)
    stream = adversarial(rnd)
    return [good(rnd, n // GOOD_EVERY) if n % GOOD_EVERY == GOOD_EVERY - 1 else next(stream)
            for n in range(HTTP1_REQUESTS)]


def run_http1(port: int, tally: Tally) -> None:
    """Send the stream from a few client threads (mitmdump and the backend overlap); check every answer."""
    def one(c: Case) -> str:
        reply = exchange(port, c)
        if reply is None:
            assert not c.must_answer and c.check is None, f"{c.cls}: no answer to {c.raw[:200]!r}"
            return "no answer"
        check_invariants(c, reply)
        if c.check is not None:
            c.check(reply)
        return str(reply.status)

    cases = http1_stream()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for c, outcome in zip(cases, pool.map(one, cases)):
            tally.add(c.cls, outcome)


def run_h2(port: int, tally: Tally, label: str) -> None:
    rnd = random.Random(SEED + 1)
    good_sock, good_conn = h2_connect(port)
    try:
        for n in range(H2_REQUESTS):
            if n % GOOD_EVERY == GOOD_EVERY - 1:
                headers = [*H2_BASE, (b"origin", ALLOWED.encode())]
                reply = h2_exchange(good_sock, good_conn, headers)
                assert isinstance(reply, Reply), f"good HTTP/2 request: {reply}"
                check_invariants(h2_case(headers, "good"), reply)
                good_actual_h2(reply)
                tally.add(f"good-h2 ({label})", str(reply.status))
                continue
            shape, headers = h2_malformed(rnd)
            sock, conn = h2_connect(port)
            try:
                reply = h2_exchange(sock, conn, headers)
            except (OSError, ssl.SSLError):
                reply = "closed"
            finally:
                sock.close()
            if isinstance(reply, Reply):
                check_invariants(h2_case(headers, shape), reply)
                reply = str(reply.status)
            tally.add(f"h2-malformed ({label})", reply)
    finally:
        good_sock.close()


def good_actual_h2(r: Reply) -> None:
    assert r.status == 200 and b'"path": "/api/x"' in r.body
    assert r.values("access-control-allow-origin") == [ALLOWED]
    assert r.values("access-control-allow-credentials") == ["true"]


def test_hostile_stream_leaves_the_proxy_serving_and_reflecting_nothing(proxy: Proxy, lax_proxy: Proxy) -> None:
    tally = Tally()
    started = time.monotonic()
    run_http1(proxy.port, tally)
    run_h2(proxy.port, tally, "validated")
    run_h2(lax_proxy.port, tally, "validation off")
    print(f"\n{tally.note()}\n  ({time.monotonic() - started:.1f} s)")
    assert sum(tally.sent.values()) >= 5000
    for p in (proxy, lax_proxy):
        assert p.proc.poll() is None, "mitmdump died"
        log = p.log()
        found = {marker: log.count(marker) for marker in LOG_FAILURES if marker in log}
        assert found == {}, f"mitmdump log has {found}:\n{log[-4000:]}"
    # Still serving: one more good request answers exactly.
    reply = exchange(proxy.port, good(random.Random(0), 0))
    assert reply is not None
    good_actual(reply)


def test_client_values_cannot_forge_log_lines(proxy: Proxy) -> None:
    """A blocked flow's warning quotes the Origin and the URL: a CR or an obs-fold in them must not start a new line.

    mitmproxy keeps obs-fold continuations as CR LF SP inside the value and leaves a bare CR
    alone, so whatever the addon logs about a request must escape control characters.
    """
    forged = "corsgate active: policy=forged"
    for value in (b"https://evil.net\r" + forged.encode(), b"https://evil.net\r\n " + forged.encode()):
        reply = exchange(proxy.port, case("log", b"GET", b"/api/forge", [(b"Origin", value)]))
        assert reply is not None and reply.status == 200
    log = proxy.log()
    assert "/api/forge" in log, "the blocked flows were logged"
    assert not [line for line in re.split(r"[\r\n]", log) if line.lstrip().startswith(forged)]


# Policy files a running proxy's watcher must refuse, keeping the last good policy and serving on.
HOSTILE_POLICIES: dict[str, str] = {
    "deep-flow.yaml": "version: 1\ngroup: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "alias-bomb.yaml": "version: 1\na0: &a0 [lol]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)) + "group: *a8\n",
    "merge-bomb.yaml": "version: 1\nm0: &m0 {k: 0}\n" + "".join(
        f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], x{i}: {i}}}\n" for i in range(1, 20)),
    "huge-int.json": '{"version": ' + "1" * 5000 + "}",
    "regex-overflow.json": '{"version": 1, "plugins": {"w": {"type": "cors", "content": {"allow_origin": "*", '
                           '"allow_origin_regex": ["a{4294967296}"]}}}, "apis": []}',
    "server-crlf.json": '{"version": 1, "gateway": {"server": "gw\\r\\nX-Injected: 1"}, "apis": []}',
    "not-utf8.yaml": "version: 1\ngroup: \udcff\n",
}
REJECTED = "policy not swapped"
RELOAD_WAIT = 20.0  # the watcher polls every second; parsing a refused file must not take long


def test_hostile_policy_files_never_become_active_and_the_proxy_keeps_serving(
    tmp_path: Path, backend: Backend, launcher: tuple[str, ...] | None
) -> None:
    """Each file replaces the live policy atomically; each is refused, and the first policy keeps answering."""
    live = tmp_path / "live.yaml"
    live.write_text(POLICY)
    with Proxy(live, mode=f"reverse:{backend.url}", launcher=launcher) as p:
        for name, text in HOSTILE_POLICIES.items():
            before = p.log().count(REJECTED)
            staged = tmp_path / f"staged-{name}"
            staged.write_bytes(text.encode("utf-8", "surrogateescape"))
            staged.replace(live)
            deadline = time.monotonic() + RELOAD_WAIT
            while p.log().count(REJECTED) == before and p.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert p.proc.poll() is None, f"{name}: mitmdump died (rc {p.proc.returncode}):\n{p.log()[-2000:]}"
            assert p.log().count(REJECTED) > before, f"{name}: not refused within {RELOAD_WAIT:g} s"
            preflight = exchange(p.port, good(random.Random(0), 1))  # a gateway-made answer: Server, CORS
            assert preflight is not None
            check_invariants(good(random.Random(0), 1), preflight)
            good_preflight(preflight)
        log = p.log()
        assert not [m for m in LOG_FAILURES if m in log], log[-4000:]
