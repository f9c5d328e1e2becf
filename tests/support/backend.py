"""A CORS-less HTTP/1.1 backend for end-to-end and browser tests.

It knows nothing about CORS on purpose: every CORS header a client sees came from
the gateway, unless a test asks the backend for one (``acao=``/``header=``) to
exercise backend precedence. Behaviour is chosen per request by query parameters,
so any path (APIG's ``/simple``, ``/users/1``) can use them:

    status=404           answer with that status
    acao=ORIGIN          add Access-Control-Allow-Origin (repeatable: one field each)
    header=Name:Value    add a response header (repeatable)
    set_cookie=a=b       add Set-Cookie (repeatable)
    stream=N             chunked text/event-stream of N events, ~50 ms apart
    delay=MS             wait before answering

``Upgrade: websocket`` gets a real RFC 6455 handshake and a text-frame echo.
Every request except ``/__hits`` is recorded; ``GET /__hits`` returns the records
as JSON and ``DELETE /__hits`` clears them.

Run: ``python tests/support/backend.py --port P`` (``--port 0`` picks a free port);
it prints ``backend listening at 127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

HITS_PATH = "/__hits"
STREAM_INTERVAL = 0.05
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B65"
# Statuses that must not carry a body (RFC 9110 §6.4.1).
_NO_BODY = frozenset({204, 304})

_hits: list[dict[str, Any]] = []
_hits_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    """Answers every method the same way, so tests can use any token (even `patch`)."""

    protocol_version = "HTTP/1.1"  # keep-alive, like a real upstream
    server_version = "corsgate-test-backend"

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler dispatches to do_<METHOD>; answer them all.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet: the test log should show the proxy, not every backend hit."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path == HITS_PATH:
            self._hits_endpoint()
            return
        with _hits_lock:
            _hits.append({"method": self.command, "path": self.path, "headers": list(self.headers.items())})
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return

        params = parse_qsl(url.query, keep_blank_values=True)
        options: dict[str, list[str]] = {}
        for name, value in params:
            options.setdefault(name, []).append(value)
        if "delay" in options:
            time.sleep(int(options["delay"][0]) / 1000)
        status = int(options.get("status", ["200"])[0])
        extra: list[tuple[str, str]] = [("Access-Control-Allow-Origin", o) for o in options.get("acao", [])]
        for spec in options.get("header", []):
            name, _, value = spec.partition(":")
            extra.append((name.strip(), value.strip()))
        extra += [("Set-Cookie", c) for c in options.get("set_cookie", [])]

        if "stream" in options:
            self._stream(status, int(options["stream"][0]), extra)
            return
        payload = json.dumps(
            {
                "method": self.command,
                "path": url.path,
                "query": parse_qs(url.query, keep_blank_values=True),
                "headers": list(self.headers.items()),
                "body": body.decode("utf-8", "replace"),
            }
        ).encode()
        self._send(status, payload, "application/json", extra)

    def _send(self, status: int, payload: bytes, content_type: str, extra: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("X-Backend", "1")
        for name, value in extra:
            self.send_header(name, value)
        if status in _NO_BODY:
            self.end_headers()
            return
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _hits_endpoint(self) -> None:
        with _hits_lock:
            if self.command == "DELETE":
                _hits.clear()
                self._send(204, b"", "")
                return
            payload = json.dumps(_hits).encode()
        self._send(200, payload, "application/json")

    def _stream(self, status: int, count: int, extra: Sequence[tuple[str, str]]) -> None:
        """Send N server-sent events as separate chunks, so streaming through the proxy is observable."""
        self.send_response(status)
        self.send_header("X-Backend", "1")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(count):
            event = f"data: {i}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            if i + 1 < count:
                time.sleep(STREAM_INTERVAL)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _websocket(self) -> None:
        """Complete the RFC 6455 handshake and echo text frames until the peer closes."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Backend", "1")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            frame = self._read_frame()
            if frame is None:
                return
            opcode, data = frame
            if opcode == 0x8:  # close: echo it back and stop
                self._write_frame(0x8, data[:2])
                return
            if opcode == 0x9:  # ping
                self._write_frame(0xA, data)
            elif opcode in (0x1, 0x2):
                self._write_frame(opcode, data)

    def _read_frame(self) -> tuple[int, bytes] | None:
        head = self.rfile.read(2)
        if len(head) < 2:
            return None
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.rfile.read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.rfile.read(8))
        mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
        return opcode, data

    def _write_frame(self, opcode: int, data: bytes) -> None:
        # Server frames are unmasked and unfragmented.
        if len(data) < 126:
            head = struct.pack("!BB", 0x80 | opcode, len(data))
        elif len(data) < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 126, len(data))
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, len(data))
        self.wfile.write(head + data)
        self.wfile.flush()


def serve(port: int) -> ThreadingHTTPServer:
    """Bind on 127.0.0.1 only (never a public interface) and return the unstarted server."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    server = serve(parser.parse_args().port)
    print(f"backend listening at 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
