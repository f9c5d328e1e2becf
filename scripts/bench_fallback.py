#!/usr/bin/env python3
"""Pure-Python stand-ins for wrk and nginx, used by scripts/bench only where those cannot be installed.

    bench_fallback.py origin --port P
    bench_fallback.py load --port P --method GET --path / --conns 16 --seconds 5 [-H 'Name: value']...

The origin answers GET with a small JSON body and OPTIONS with 204, keep-alive,
no CORS headers; on one core it is still several times faster than mitmdump, so
the proxy stays the bottleneck. The load generator keeps `conns` keep-alive
connections busy (closed loop) and prints the same WRKJSON line as the benchmark's
wrk script. It is slower than wrk, so the bench marks every report made with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

BODY = b'{"id":4711,"name":"bench"}'
GET_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY
OPTIONS_RESPONSE = b"HTTP/1.1 204 No Content\r\n\r\n"


async def serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 keep-alive: read a head (and any Content-Length body), answer, repeat until the client closes."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = _content_length(head)
            if length:
                await reader.readexactly(length)
            writer.write(OPTIONS_RESPONSE if head.startswith(b"OPTIONS ") else GET_RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


async def origin(port: int) -> None:
    server = await asyncio.start_server(serve_client, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def load(port: int, request: bytes, conns: int, seconds: float) -> dict[str, int]:
    """Closed-loop load; latencies in µs, the fields of the bench's wrk summary."""
    latencies: list[int] = []
    counts = {"errors": 0, "non2xx": 0}
    start = time.monotonic()
    deadline = start + seconds

    async def worker() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["errors"] += 1
            return
        try:
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = _content_length(head)
                if length:
                    await reader.readexactly(length)
                latencies.append(int((time.monotonic() - t0) * 1e6))
                if not 200 <= status < 400:
                    counts["non2xx"] += 1
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            counts["errors"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    duration = time.monotonic() - start
    latencies.sort()

    def pct(p: float) -> int:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] if latencies else 0

    return {"requests": len(latencies), "duration_us": int(duration * 1e6), "p50": pct(50), "p99": pct(99),
            "max": latencies[-1] if latencies else 0, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    o = sub.add_parser("origin")
    o.add_argument("--port", type=int, required=True)
    ld = sub.add_parser("load")
    ld.add_argument("--port", type=int, required=True)
    ld.add_argument("--method", default="GET")
    ld.add_argument("--path", default="/")
    ld.add_argument("--conns", type=int, default=16)
    ld.add_argument("--seconds", type=float, default=5)
    ld.add_argument("-H", dest="headers", action="append", default=[])
    args = parser.parse_args()
    if args.command == "origin":
        asyncio.run(origin(args.port))
        return
    head = f"{args.method} {args.path} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in args.headers) + "\r\n"
    result = asyncio.run(load(args.port, head.encode("latin-1"), args.conns, args.seconds))
    print("WRKJSON " + json.dumps(result))


if __name__ == "__main__":
    main()
