"""Real nginx for tests: export a policy with scripts/cors-export, check it with `nginx -t`, run it.

Like procs.py: 127.0.0.1 only, a free port, a prefix in a temp dir, bounded waits, and the process
stopped through its own Popen handle. Where nginx is missing, `unavailable_reason()` says so and the
tests skip with it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.procs import REPO, _Process, _stop, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
EXPORT = REPO / "scripts" / "cors-export"
_POLL = 0.05


def unavailable_reason() -> str | None:
    """Why nginx tests cannot run here, or None."""
    if not os.access(NGINX, os.X_OK):
        return f"nginx not found (looked for {NGINX}); .ci/run installs it with apt"
    return None


def export(policy: str | os.PathLike[str], upstream: str, output: Path, *, listen: str | None = None,
           standalone: bool = True, extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Run scripts/cors-export nginx; the result carries rc, stdout and stderr (the warnings)."""
    cmd = [sys.executable, str(EXPORT), "nginx", str(policy), "--upstream", upstream, "-o", str(output), *extra]
    if listen:
        cmd += ["--listen", listen]
    if standalone:
        cmd.append("--standalone")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)


def check(config: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a standalone configuration."""
    return subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(config)], capture_output=True, text=True,
                          timeout=30)


class Nginx(_Process):
    """nginx running an exported --standalone policy in front of upstream; started on construction.

    The configuration is exported, checked with `nginx -t` (a failure raises with its output), then run
    as `nginx -p DIR -c nginx.conf -g 'daemon off;'`; ready when its port accepts connections."""

    def __init__(self, policy: str | os.PathLike[str], upstream: str, *, extra: Sequence[str] = (),
                 timeout: float = 15.0) -> None:
        super().__init__("corsgate-nginx-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.dir / "nginx.conf"
        exported = export(policy, upstream, self.config, listen=f"127.0.0.1:{self.port}", extra=extra)
        if exported.returncode != 0:
            raise RuntimeError(f"cors-export failed ({exported.returncode}):\n{exported.stderr}")
        self.warnings = exported.stderr
        checked = check(self.config, self.dir)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the export:\n{checked.stderr}")
        self._spawn([NGINX, "-p", str(self.dir), "-c", str(self.config), "-g", "daemon off;"])
        deadline = time.monotonic() + timeout
        while not _accepts(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with rc {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                _stop(self.proc)
                raise TimeoutError(f"nginx not listening after {timeout} s:\n{self.log()}")
            time.sleep(_POLL)

    def stop(self) -> None:
        """SIGTERM (nginx's fast shutdown), bounded wait, then SIGKILL."""
        _stop(self.proc)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def prefix_files(directory: Path) -> list[str]:
    """What nginx wrote under its prefix (for the prefix-relative test)."""
    return sorted(str(p.relative_to(directory)) for p in Path(directory).rglob("*"))


# -- comparing an exchange through corsgate and through nginx ----------------------------------------------

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def cors_view(status: int, headers: Sequence[tuple[str, str]]) -> dict[str, object]:
    """What the differential compares: status, every Access-Control-* field (name -> values, in order), the
    Vary tokens (lower-cased, as a set: nginx adds its own field rather than rewriting the backend's), and
    whether X-Request-Id is present and 32 lowercase hex digits."""
    fields: dict[str, list[str]] = {}
    for name, val in headers:
        if name.lower().startswith("access-control-"):
            fields.setdefault(name.lower(), []).append(val)
    vary = {t.strip().lower() for name, val in headers if name.lower() == "vary" for t in val.split(",") if t.strip()}
    ids = [val for name, val in headers if name.lower() == "x-request-id"]
    return {
        "status": status, "fields": fields, "vary": vary,
        "request_id": "none" if not ids else "ok" if len(ids) == 1 and REQUEST_ID.fullmatch(ids[0]) else f"bad {ids}",
    }


def differences(corsgate: dict[str, object], nginx: dict[str, object], warned: set[str] = frozenset()) -> list[str]:
    """Every way two cors_view()s differ, worded for a failure message; fields in `warned` (see
    warned_fields) are the exporter's documented limitations and are not counted."""
    out = []
    for key in ("status", "request_id", "vary"):
        if corsgate[key] != nginx[key]:
            out.append(f"{key}: corsgate {corsgate[key]}, nginx {nginx[key]}")
    a, b = corsgate["fields"], nginx["fields"]
    assert isinstance(a, dict) and isinstance(b, dict)
    for name in sorted(a.keys() | b.keys()):
        if a.get(name) != b.get(name) and name not in warned:
            out.append(f"{name}: corsgate {a.get(name)}, nginx {b.get(name)}")
    return out


# What the exporter warns about (its stderr), and which compared field each warning excuses.
WARNED_FIELDS = {
    "expose_headers: '*' with allow_credentials": "access-control-expose-headers",
}


def warned_fields(warnings: str) -> set[str]:
    """The fields an export's warnings say nginx sends differently: their differences are documented."""
    return {field for text, field in WARNED_FIELDS.items() if text in warnings}


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """The value of the quoted token opening at text[start], as ngx_conf_read_token unescapes it, and the index
    after its closing quote."""
    quote_char, out, i = text[start], [], start + 1
    while text[i] != quote_char:
        if text[i] == "\\" and text[i + 1] in "\"'\\":
            out.append(text[i + 1])
            i += 2
        elif text[i] == "\\" and text[i + 1] in "trn":
            out.append({"t": "\t", "r": "\r", "n": "\n"}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out), i + 1
