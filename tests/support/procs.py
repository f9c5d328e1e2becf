"""Real processes for end-to-end and browser tests: the backend, mitmdump, a raw HTTP client.

Everything listens on 127.0.0.1, every wait is bounded, and every process is
stopped through its own Popen handle. The mitmdump command prefix lives in one
place (``MITMDUMP``/``mitmdump_command``) so another launcher can be swapped in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
GATEWAY = REPO / "addon" / "cors_gateway.py"
BACKEND_SCRIPT = Path(__file__).with_name("backend.py")
RECORDER = Path(__file__).with_name("recorder.py")

# `python -m mitmproxy` does not exist; this pins the test interpreter's mitmproxy.
MITMDUMP: tuple[str, ...] = (
    sys.executable,
    "-c",
    "import sys; from mitmproxy.tools.main import mitmdump; sys.exit(mitmdump())",
)
BANNER = "corsgate active:"
_LISTENING = re.compile(r"listening at 127\.0\.0\.1:(\d+)")
_BACKEND_LISTENING = re.compile(r"backend listening at 127\.0\.0\.1:(\d+)")
_POLL = 0.05

Headers = Mapping[str, str] | Sequence[tuple[str, str]]


def free_port() -> int:
    """A port that was free a moment ago; prefer `--port 0` where the server can report its own."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mitmdump_command(args: Sequence[str], launcher: Sequence[str] | None = None) -> list[str]:
    """The full mitmdump command line: the launcher prefix (default: this interpreter) plus args."""
    return [*(launcher if launcher is not None else MITMDUMP), *args]


def _base_args(confdir: Path) -> list[str]:
    # confdir keeps a developer's ~/.mitmproxy/config.yaml out; flow_detail=0 (not -q) keeps the "listening" line.
    return ["--listen-host", "127.0.0.1", "--listen-port", "0", "--set", f"confdir={confdir}", "--set", "flow_detail=0"]


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, bounded wait, then SIGKILL: mitmdump exits 0 on SIGTERM."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _wait_for(
    proc: subprocess.Popen[bytes], log: Path, patterns: Sequence[re.Pattern[str]], timeout: float, what: str
) -> list[re.Match[str]]:
    """Poll the log until every pattern matched; fail with the log if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace")
        matches = [p.search(text) for p in patterns]
        if all(matches):
            return matches  # type: ignore[return-value]
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with rc {proc.returncode}:\n{text}")
        if time.monotonic() > deadline:
            _stop(proc)
            wanted = [p.pattern for p in patterns]
            raise TimeoutError(f"{what} not ready after {timeout} s (waiting for {wanted}):\n{text}")
        time.sleep(_POLL)


class _Process:
    """A subprocess with its output in a temp log file, removed when the object goes away."""

    def __init__(self, prefix: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)
        self.log_path = self.dir / "output.log"
        self.proc: subprocess.Popen[bytes]

    def _spawn(self, cmd: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO, env=env
            )

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the process (idempotent)."""
        _stop(self.proc)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Backend(_Process):
    """tests/support/backend.py in a subprocess; started on construction, usable as a context manager."""

    def __init__(self, port: int = 0, *, timeout: float = 10.0) -> None:
        super().__init__("corsgate-backend-")
        self._spawn([sys.executable, str(BACKEND_SCRIPT), "--port", str(port)])
        (match,) = _wait_for(self.proc, self.log_path, [_BACKEND_LISTENING], timeout, "backend")
        self.port = int(match.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def hits(self) -> list[dict[str, Any]]:
        """Requests that reached the backend, oldest first: {"method", "path" (with query), "headers" (pairs)}."""
        status, _, body = http("GET", f"{self.url}/__hits")
        assert status == 200, body
        return [{**hit, "headers": [tuple(pair) for pair in hit["headers"]]} for hit in json.loads(body)]

    def clear(self) -> None:
        """Forget the recorded requests."""
        status, _, body = http("DELETE", f"{self.url}/__hits")
        assert status == 204, body


class Proxy(_Process):
    """mitmdump in a subprocess, with the gateway addon unless addon=False; started on construction.

    Waits for "listening at 127.0.0.1:PORT" and, with the addon, for the banner: mitmdump
    silently runs without an addon that failed to load, so the banner is the proof.
    """

    def __init__(
        self,
        policy: str | os.PathLike[str] | None = None,
        mode: str | None = None,
        extra: Sequence[str] = (),
        *,
        addon: bool = True,
        record: bool = False,
        env: Mapping[str, str] | None = None,
        launcher: Sequence[str] | None = None,
        timeout: float = 60.0,  # startup on a loaded 2-core host took over 20 s
    ) -> None:
        if policy is not None and not addon:
            raise ValueError("a policy needs the addon")
        super().__init__("corsgate-proxy-")
        self.record_path: Path | None = self.dir / "records.jsonl" if record else None
        args = _base_args(self.dir / "conf")
        if mode is not None:
            args += ["--mode", mode]
        if addon:
            args += ["-s", str(GATEWAY)]
            if policy is not None:
                args += ["--set", f"cors_policy={policy}"]
        if record:
            args += ["-s", str(RECORDER)]
        args += list(extra)
        full_env = {**os.environ, **(env or {})}
        if self.record_path is not None:
            full_env["CORSGATE_RECORD"] = str(self.record_path)
        self.command = mitmdump_command(args, launcher)
        self._spawn(self.command, full_env)
        patterns = [_LISTENING, re.compile(re.escape(BANNER))] if addon else [_LISTENING]
        matches = _wait_for(self.proc, self.log_path, patterns, timeout, "mitmdump")
        self.port = int(matches[0].group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def records(self, at_least: int = 0, timeout: float = 5.0, *, path_contains: str = "") -> list[dict[str, Any]]:
        """The recorder's entries (needs record=True) whose path contains path_contains, oldest first.

        Waits up to timeout for at least `at_least` of them: the recorder writes in the
        proxy's response hook, which may finish just after the client has its answer.
        Entries: {"event", "method", "url", "path", "request_headers", "status",
        "response_headers", "error", "metadata"} (header lists are [name, value] pairs).
        """
        if self.record_path is None:
            raise RuntimeError("Proxy(record=True) is needed for records()")
        deadline = time.monotonic() + timeout
        while True:
            lines = self.record_path.read_text().splitlines() if self.record_path.exists() else []
            entries = [e for e in map(json.loads, lines) if path_contains in e["path"]]
            if len(entries) >= at_least or time.monotonic() > deadline:
                return entries
            time.sleep(_POLL)


class ProxyPool:
    """One running, recording Proxy per distinct set of arguments, shared by the whole session.

    Starting mitmdump with the addon costs one to a few seconds, so proxies are shared,
    and `warm` starts a module's proxies side by side instead of one after another.
    """

    def __init__(self, launcher: Sequence[str] | None = None) -> None:
        self._started: dict[tuple[object, ...], Proxy] = {}
        self._launcher = launcher  # for proxies with the gateway; a bare one is always mitmdump

    @staticmethod
    def _key(
        policy: str | os.PathLike[str] | None, mode: str | None, extra: Sequence[str], addon: bool
    ) -> tuple[object, ...]:
        return (None if policy is None else str(policy), mode, tuple(extra), addon)

    def __call__(
        self,
        policy: str | os.PathLike[str] | None = None,
        mode: str | None = None,
        extra: Sequence[str] = (),
        *,
        addon: bool = True,
    ) -> Proxy:
        key = self._key(policy, mode, extra, addon)
        if key not in self._started:
            self._started[key] = Proxy(
                policy, mode, extra, addon=addon, record=True, launcher=self._launcher if addon else None
            )
        return self._started[key]

    def warm(self, specs: Iterable[tuple[str | os.PathLike[str] | None, str | None]]) -> None:
        """Start the (policy, mode) proxies not running yet, concurrently; failures surface when a test asks for one."""
        missing = {self._key(policy, mode, (), True) for policy, mode in specs} - self._started.keys()
        # mitmdump's start-up is CPU-bound: more starters than cores only slows each one down.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            futures = {
                key: pool.submit(Proxy, key[0], key[1], record=True, launcher=self._launcher) for key in missing
            }
        for key, future in futures.items():
            if future.exception() is None:
                self._started[key] = future.result()

    def stop(self) -> None:
        """Stop every proxy of the pool, side by side."""
        with ThreadPoolExecutor() as pool:
            list(pool.map(Proxy.stop, self._started.values()))


def run_to_exit(
    args: Sequence[str],
    timeout: float = 20.0,
    *,
    env: Mapping[str, str] | None = None,
    launcher: Sequence[str] | None = None,
) -> tuple[int, str]:
    """Run mitmdump with args (plus the 127.0.0.1/port 0/temp confdir basics) until it exits by itself.

    For tests that expect a refusal to start (rc 1). If it is still running after
    timeout, it is stopped and TimeoutError carries its output.
    """
    with tempfile.TemporaryDirectory(prefix="corsgate-run-") as tmp:
        cmd = mitmdump_command([*_base_args(Path(tmp) / "conf"), *args], launcher)
        with open(Path(tmp) / "output.log", "w+b") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                env={**os.environ, **(env or {})},
            )
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _stop(proc)
                out.seek(0)
                raise TimeoutError(f"mitmdump still running after {timeout} s:\n{out.read().decode(errors='replace')}")
            out.seek(0)
            return rc, out.read().decode(errors="replace")


def _connection(host: str, port: int, https: bool, timeout: float) -> HTTPConnection:
    if https:
        # Tests talk to mitmproxy's own certificates; verification is not what they test.
        return HTTPSConnection(host, port, timeout=timeout, context=ssl._create_unverified_context())
    return HTTPConnection(host, port, timeout=timeout)


def http(
    method: str,
    url: str,
    headers: Headers | None = None,
    proxy: str | None = None,
    body: bytes | str | None = None,
    *,
    timeout: float = 10.0,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request on a fresh connection; returns (status, header pairs as received, body).

    http.client keeps repeated response fields apart (two Access-Control-Allow-Origin
    lines stay two pairs), sends the method exactly as given (`patch` stays lower-case)
    and adds only Host and Accept-Encoding: identity. Request headers may be a list
    of pairs to send a field twice. With proxy ("http://127.0.0.1:PORT"), http URLs go
    in absolute form to the proxy and https URLs through a CONNECT tunnel.
    """
    target = urlsplit(url)
    https = target.scheme == "https"
    port = target.port or (443 if https else 80)
    path = target.path or "/"
    if target.query:
        path += "?" + target.query
    if proxy is None:
        conn = _connection(target.hostname or "", port, https, timeout)
        request_target = path
    else:
        px = urlsplit(proxy)
        conn = _connection(px.hostname or "", px.port or 8080, https, timeout)
        if https:
            conn.set_tunnel(target.hostname or "", port)
            request_target = path
        else:
            request_target = url
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    try:
        conn.putrequest(
            method,
            request_target,
            skip_host=any(k.lower() == "host" for k, _ in pairs),
            skip_accept_encoding=any(k.lower() == "accept-encoding" for k, _ in pairs),
        )
        data = body.encode() if isinstance(body, str) else body
        for name, value in pairs:
            conn.putheader(name, value)
        if data is not None and not any(k.lower() == "content-length" for k, _ in pairs):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()

