"""Real nginx for tests: export a policy with scripts/cors-export, check it with `nginx -t`, run it.

Like procs.py: 127.0.0.1 only, a free port, a prefix in a temp dir, bounded waits, and the process
stopped through its own Popen handle. Where nginx is missing, `unavailable_reason()` says so and the
tests skip with it.
"""

from __future__ import annotations

import os
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
