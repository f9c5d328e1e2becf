"""The lean launcher (issue 8): `scripts/corsgate serve`, a mitmproxy Master with a chosen addon list.

What it keeps must still work (CORS in reverse and regular mode, TLS with mitmproxy's
CA, proxyauth, connection_strategy, h2c and Alt-Svc handling, block_global), what it
drops must really be gone (nothing displays or records flows), and it must start,
fail and stop the way `mitmdump -s addon/cors_gateway.py` does. Where the two are
compared, both run the same arguments.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPSConnection, RemoteDisconnected
from pathlib import Path
from urllib.parse import quote

import pytest
from mitmproxy import exceptions, master, options
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import tflow

from addon.launcher import HookIndexedAddons
from tests.support.procs import BANNER, GATEWAY, MITMDUMP, REPO, Backend, Proxy, free_port, http, run_to_exit

LEAN = (sys.executable, str(REPO / "scripts" / "corsgate"), "serve")
LAUNCHERS = {"mitmdump": MITMDUMP, "lean": LEAN}
SEED = str(REPO / "policies" / "apig-seed.yaml")
ORIGIN = "https://app.example.com"
STARTUP_ERROR = "Error logged during startup, exiting..."


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


@pytest.fixture(scope="module")
def reverse(backend: Backend) -> Iterator[Proxy]:
    """The lean launcher in reverse mode with the test recorder as a second `-s` script."""
    with Proxy(mode=f"reverse:{backend.url}", launcher=LEAN, record=True) as proxy:
        yield proxy


# -- serving -------------------------------------------------------------------------------------

def test_reverse_mode_decorates_gets_and_answers_preflights_itself(reverse: Proxy, backend: Backend) -> None:
    backend.clear()
    status, headers, _ = http("GET", f"{reverse.url}/users/1", {"Origin": ORIGIN})
    assert status == 200 and values(headers, "X-Backend") == ["1"]
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    status, headers, _ = http(
        "OPTIONS", f"{reverse.url}/users/1", {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}
    )
    assert status == 200 and values(headers, "Access-Control-Allow-Methods") == ["PUT"]
    assert [hit["method"] for hit in backend.hits()] == ["GET"]  # the preflight never reached the backend


def test_banner_once_and_user_scripts_run_after_the_gateway(reverse: Proxy) -> None:
    """`-s addon/cors_gateway.py` (which Proxy passes, as mitmdump needs it) is built in, not loaded twice."""
    path = f"/recorded/{uuid.uuid4().hex}"
    http("GET", f"{reverse.url}{path}", {"Origin": ORIGIN})
    log = reverse.log()
    assert log.count(BANNER) == 1
    assert re.search(r"corsgate active: policy=\S+/policies/default\.yaml apis=1 mode=enforce digest=[0-9a-f]+", log)
    (record,) = [r for r in reverse.records(at_least=1) if r["path"] == path]
    assert [v for k, v in record["response_headers"] if k.lower() == "access-control-allow-origin"] == [ORIGIN]


def test_runs_optimised_so_mitmproxy_skips_its_debug_type_checks(reverse: Proxy) -> None:
    """scripts/corsgate re-runs itself under `python -O`, in the same process (the handle still stops it)."""
    cmdline = Path(f"/proc/{reverse.proc.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1] == b"-O" and cmdline[2].endswith(b"scripts/corsgate")


def test_regular_mode(backend: Backend) -> None:
    with Proxy(launcher=LEAN) as proxy:
        status, headers, _ = http("GET", f"{backend.url}/regular", {"Origin": ORIGIN}, proxy=proxy.url)
    assert status == 200 and values(headers, "X-Backend") == ["1"]
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN]


def test_cors_flags_set_the_addon_options(backend: Backend) -> None:
    extra = ["--policy", SEED, "--cors-mode", "report", "--cors-reload", "false"]
    with Proxy(mode=f"reverse:{backend.url}", extra=extra, launcher=LEAN) as proxy:
        status, headers, _ = http("GET", f"{proxy.url}/simple", {"Origin": ORIGIN})
        log = proxy.log()
    assert f"corsgate active: policy={SEED} apis=3 mode=report" in log
    assert status == 200 and values(headers, "Access-Control-Allow-Origin") == []  # report mode changes nothing


# -- what the chosen addons keep -----------------------------------------------------------------

def test_tls_with_mitmproxys_ca_in_confdir(backend: Backend) -> None:
    """tlsconfig signs with mitmproxy's CA from confdir, so a client that trusts that CA trusts the gateway."""
    with Proxy(mode=f"reverse:{backend.url}", launcher=LEAN) as proxy:
        ca = proxy.dir / "conf" / "mitmproxy-ca-cert.pem"
        conn = HTTPSConnection("127.0.0.1", proxy.port, timeout=10, context=ssl.create_default_context(cafile=ca))
        try:
            conn.request("GET", "/tls", headers={"Origin": ORIGIN})
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
    assert response.status == 200 and response.getheader("Access-Control-Allow-Origin") == ORIGIN


def test_proxyauth(backend: Backend) -> None:
    with Proxy(launcher=LEAN, extra=["--set", "proxyauth=alice:secret"]) as proxy:
        status, _, _ = http("GET", f"{backend.url}/auth", {"Origin": ORIGIN}, proxy=proxy.url)
        assert status == 407
        credentials = base64.b64encode(b"alice:secret").decode()
        status, headers, _ = http(
            "GET", f"{backend.url}/auth", {"Origin": ORIGIN, "Proxy-Authorization": f"Basic {credentials}"},
            proxy=proxy.url,
        )
    assert status == 200 and values(headers, "Access-Control-Allow-Origin") == [ORIGIN]


@pytest.mark.parametrize("force_lazy", ["true", "false"])
def test_connection_strategy(force_lazy: str) -> None:
    """Lazy (the addon's default): a dead upstream is a CORS-readable 502; eager: mitmproxy's empty reply."""
    dead = free_port()
    with Proxy(mode=f"reverse:http://127.0.0.1:{dead}", extra=["--cors-force-lazy", force_lazy], launcher=LEAN) as p:
        if force_lazy == "true":
            status, headers, _ = http("GET", f"{p.url}/down", {"Origin": ORIGIN})
            assert status == 502 and values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
        else:
            with pytest.raises((RemoteDisconnected, ConnectionResetError)):
                http("GET", f"{p.url}/down", {"Origin": ORIGIN})


def test_h2c_upgrade_is_not_forwarded(reverse: Proxy, backend: Backend) -> None:
    backend.clear()
    status, _, _ = http(
        "GET", f"{reverse.url}/h2c",
        {"Upgrade": "h2c", "Connection": "Upgrade, HTTP2-Settings", "HTTP2-Settings": "AAMAAABkAAQAAP__"},
    )
    (hit,) = backend.hits()
    assert status == 200
    assert not {"upgrade", "http2-settings"} & {k.lower() for k, _ in hit["headers"]}


def test_alt_svc_points_at_the_proxy(reverse: Proxy) -> None:
    """Reverse mode: an upstream's Alt-Svc must not send browsers around the gateway."""
    status, headers, _ = http("GET", f"{reverse.url}/alt?header=" + quote('Alt-Svc:h3=":443"; ma=60'))
    assert status == 200 and values(headers, "Alt-Svc") == [f'h3=":{reverse.port}"; ma=60']


def test_dispatch_keeps_mitmproxys_order_halt_and_dynamic_addons() -> None:
    """Only handlers are visited, but in chain order, a halt still stops the event, and new addons get events."""
    seen: list[str] = []

    class Hook:
        def __init__(self, name: str, halt: bool = False) -> None:
            self.name, self.halt = name, halt

        def request(self, f: object) -> None:
            seen.append(self.name)
            if self.halt:
                raise exceptions.AddonHalt

    class Quiet:  # no hooks at all
        name = "quiet"

    class Holder:  # like the script loader: what it holds comes and goes
        name = "holder"

        def __init__(self) -> None:
            self.addons: list[object] = []

    async def scenario() -> None:
        proxy = master.Master(options.Options())
        proxy.addons.__class__ = HookIndexedAddons
        holder = Holder()
        proxy.addons.add(Hook("a"), Quiet(), holder, Hook("b"))
        await proxy.addons.trigger_event(HttpRequestHook(tflow.tflow()))
        assert seen == ["a", "b"]
        holder.addons.append(Hook("held"))
        proxy.addons.add(Hook("c", halt=True), Hook("d"))
        seen.clear()
        await proxy.addons.trigger_event(HttpRequestHook(tflow.tflow()))
        assert seen == ["a", "held", "b", "c"]

    asyncio.run(scenario())


# -- what the lean master leaves out ---------------------------------------------------------------

def test_flows_are_neither_displayed_nor_recorded(backend: Backend, tmp_path: Path) -> None:
    """No dumper, no save: their options are reported as ignored instead of silently doing nothing."""
    dump = tmp_path / "flows.mitm"
    extra = ["--set", "flow_detail=4", "--set", f"save_stream_file={dump}"]
    path = f"/displayed/{uuid.uuid4().hex}"
    with Proxy(mode=f"reverse:{backend.url}", extra=extra, launcher=LEAN) as proxy:
        assert http("GET", f"{proxy.url}{path}", {"Origin": ORIGIN})[0] == 200
        proxy.stop()
        log = proxy.log()
    assert path not in log and not dump.exists()
    assert re.search(r"ignoring flow_detail, save_stream_file: not options of the lean launcher", log)


# -- starting and stopping like mitmdump --------------------------------------------------------------

@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("cors_mode=zzz", "cors_mode must be one of enforce, report, not 'zzz'"),
        ("cors_policy=BROKEN", "apis[0].method: must be one of 'GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH', "
                               "'OPTIONS' or 'ANY', got 'FOO'"),
    ],
)
def test_bad_option_or_policy_exits_1_with_mitmdumps_message(
    launcher: str, setting: str, message: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\napis: [{name: x, path: /a, method: FOO}]\n")
    rc, out = run_to_exit(
        ["-s", str(GATEWAY), "--set", setting.replace("BROKEN", str(broken))], launcher=LAUNCHERS[launcher]
    )
    assert rc == 1, out
    assert message in out and STARTUP_ERROR in out
    assert BANNER not in out
    if launcher == "lean":
        assert "listening at" not in out  # refused before binding, where mitmdump binds first


def test_a_bad_cors_flag_gets_the_addons_message_too() -> None:
    rc, out = run_to_exit(["--cors-mode", "zzz"], launcher=LEAN)
    assert rc == 1 and "cors_mode must be one of enforce, report, not 'zzz'" in out and STARTUP_ERROR in out


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_with_exit_0_as_mitmdump_does(backend: Backend, sig: signal.Signals, launcher: str) -> None:
    with Proxy(mode=f"reverse:{backend.url}", launcher=LAUNCHERS[launcher]) as proxy:
        idle = HTTPConnection("127.0.0.1", proxy.port, timeout=10)  # a keep-alive client still connected
        try:
            idle.request("GET", "/before-signal")
            idle.getresponse().read()
            proxy.proc.send_signal(sig)
            rc = proxy.proc.wait(15)
        finally:
            idle.close()
    assert rc == 0, proxy.log()


# -- block_global, from a client that is not on loopback ---------------------------------------------

# Any global (public) address works: the veth pair joins two namespaces made here and nothing leaves them.
PROXY_GLOBAL, CLIENT_GLOBAL = "5.5.5.1", "5.5.5.2"
PROXY_PRIVATE, CLIENT_PRIVATE = "10.77.0.1", "10.77.0.2"
SHARED_PORT = 8080  # free in a namespace of our own
PING_POLICY = """\
version: 1
apis:
  - {name: ping, method: GET, path: /ping, cors: true, backend: {type: mock, status: 200, body: pong}}
"""
CLIENT = """\
import json, sys
from tests.support.procs import http
try:
    status, headers, body = http("GET", "http://gw.test/ping", {"Origin": sys.argv[2]}, proxy=sys.argv[1], timeout=5)
except OSError as e:  # RemoteDisconnected, ConnectionResetError: the proxy dropped the connection
    print(json.dumps({"dropped": type(e).__name__}))
else:
    acao = [v for k, v in headers if k.lower() == "access-control-allow-origin"]
    print(json.dumps({"status": status, "body": body.decode(), "acao": acao}))
"""


@dataclass(frozen=True)
class Namespaces:
    """Two network namespaces joined by a veth pair: the proxy's and a client's."""

    proxy: str
    client: str

    def ask(self, proxy_address: str) -> dict[str, object]:
        """GET http://gw.test/ping from the client namespace through the proxy listening at proxy_address."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.client, sys.executable, "-c", CLIENT,
             f"http://{proxy_address}:{SHARED_PORT}", ORIGIN],
            capture_output=True, text=True, timeout=30, cwd=REPO,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _netns_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


@pytest.fixture(scope="module")
def namespaces() -> Iterator[Namespaces]:
    if reason := _netns_unavailable():
        pytest.skip(f"block_global test needs a client on a non-loopback address: {reason}")
    tag = f"{os.getpid() % 100000}"
    ns = Namespaces(f"corsgate-px-{tag}", f"corsgate-cl-{tag}")
    _ip("netns", "add", ns.proxy)
    try:
        _ip("netns", "add", ns.client)
        try:
            _ip("link", "add", f"cgp{tag}", "netns", ns.proxy, "type", "veth", "peer", "name", f"cgc{tag}",
                "netns", ns.client)
            for name, dev, addresses in ((ns.proxy, f"cgp{tag}", (PROXY_GLOBAL, PROXY_PRIVATE)),
                                         (ns.client, f"cgc{tag}", (CLIENT_GLOBAL, CLIENT_PRIVATE))):
                for address in addresses:
                    _ip("-n", name, "addr", "add", f"{address}/24", "dev", dev)
                _ip("-n", name, "link", "set", dev, "up")
                _ip("-n", name, "link", "set", "lo", "up")
            yield ns
        finally:
            _ip("netns", "del", ns.client)  # takes the veth pair with it
    finally:
        _ip("netns", "del", ns.proxy)


def _shared_proxy(ns: Namespaces, launcher: Sequence[str], policy: Path, extra: Sequence[str] = ()) -> Proxy:
    """A proxy inside the proxy namespace: 127.0.0.1 for Proxy's readiness check, 0.0.0.0 as a shared proxy."""
    return Proxy(
        policy, extra=["--mode", "regular", "--mode", f"regular@0.0.0.0:{SHARED_PORT}", *extra],
        launcher=("ip", "netns", "exec", ns.proxy, *launcher),
    )


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_block_global_refuses_a_public_client_as_mitmdump_does(
    namespaces: Namespaces, launcher: str, tmp_path: Path
) -> None:
    policy = tmp_path / "ping.yaml"
    policy.write_text(PING_POLICY)
    served = {"status": 200, "body": "pong", "acao": ["*"]}
    with _shared_proxy(namespaces, LAUNCHERS[launcher], policy) as proxy:
        assert namespaces.ask(PROXY_GLOBAL).keys() == {"dropped"}
        assert namespaces.ask(PROXY_PRIVATE) == served  # the link works; only the public client is refused
        log = proxy.log()
    assert f"Client connection from {CLIENT_GLOBAL} killed by block_global option." in log
    with _shared_proxy(namespaces, LAUNCHERS[launcher], policy, ["--set", "block_global=false"]):
        assert namespaces.ask(PROXY_GLOBAL) == served  # so it was block_global that refused it
