"""`cors-export nginx`: every export passes `nginx -t`, hostile policies cannot inject a directive, and what
nginx cannot carry is refused or warned with file:line: field (issue 16, items 2, 5 and 6)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from addon.core.policy import PolicyError, load_policy
from addon.tools.nginx_export import HEADERS_MORE, ExportError, export_nginx
from tests.fuzz import corpus
from tests.support.nginx import NGINX, Nginx, check, export, read_quoted, unavailable_reason
from tests.support.procs import Backend, free_port, http

REASON = unavailable_reason()
needs_nginx = pytest.mark.skipif(REASON is not None, reason=f"nginx tests: {REASON}")
POLICIES = Path(__file__).resolve().parents[2] / "policies"
SHIPPED = sorted(POLICIES.glob("*.yaml"))
UPSTREAM = "http://127.0.0.1:9"
# Hostile strings: each tries to end an nginx string, a directive or a block and start its own.
BREAKOUT = '"; } server { listen 127.0.0.1:9; return 418; } # \' $host ${request_id} \\'
INJECTED = "418"
HOSTILE_VALUE = "v" + BREAKOUT.replace("\\", "/").strip()  # header values: no backslash, no end spaces


# -- a tokenizer of nginx's configuration syntax (ngx_conf_read_token), to see what nginx will see -----------

def statements(text: str) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """(enclosing block names, [directive, args...]) for every directive, with quoted strings unescaped."""
    stack: list[str] = []
    words: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#" and not words or c == "#" and text[i - 1].isspace():
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif c == ";":
            yield tuple(stack), words
            words, i = [], i + 1
        elif c == "{":
            yield tuple(stack), words
            stack.append(words[0])
            words, i = [], i + 1
        elif c == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
            i += 1
        elif c in "\"'":
            word, i = read_quoted(text, i)
            words.append(word)
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in ";{}" or (
                    j < len(text) and text[j] in "{}" and j > i and text[j - 1] == "$"):
                j += 1
            words.append(text[i:j])
            i = j
    assert not stack and not words, "unbalanced configuration"


def skeleton(text: str) -> dict[str, object]:
    """The structure an injected directive would change: blocks, locations, listens and return codes."""
    found = []
    for block, words in statements(text):
        if block[-1:] in (("map",), ("geo",)):  # an entry: a key and a value, nothing more
            assert len(words) == 2, f"map entry {words}"
        else:
            found.append((block, words))
    names = {words[0] for _, words in found}
    return {
        "directives": names,
        "servers": sum(words[0] == "server" and block == ("http",) for block, words in found),
        "locations": [words[1:] for block, words in found if words[0] == "location"],
        "listens": [words[1:] for _, words in found if words[0] == "listen"],
        "returns": {words[1] for _, words in found if words[0] == "return"},
    }


ALLOWED = {
    "load_module", "worker_processes", "pid", "error_log", "events", "worker_connections", "http", "access_log",
    "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path",
    "map_hash_bucket_size", "map_hash_max_size", "variables_hash_max_size", "geo", "upstream", "map", "server", "listen",
    "server_tokens", "default_type", "set", "add_header", "more_set_headers", "proxy_hide_header",
    "proxy_pass_header", "proxy_http_version", "proxy_set_header", "proxy_connect_timeout",
    "proxy_max_temp_file_size", "proxy_request_buffering", "client_max_body_size", "location", "error_page", "if",
    "return", "proxy_pass", "keepalive",
}


def _hostile_policy() -> str:
    policy = {
        "version": 1,
        "gateway": {"request_id": True, "server": "gw" + BREAKOUT.replace("\\", "/").strip(), "unmatched": "reject"},
        "plugins": {
            BREAKOUT: {"type": "cors", "content": {
                "allow_origin": "https://app.example.com", "allow_origin_regex": [BREAKOUT + ".*"],
                "allow_methods": "GET,PO$T,P#'|`", "allow_headers": "X-$host,X-'#|`", "expose_headers": "X-$x",
                "max_age": 5, "allow_credentials": True,
            }},
            BREAKOUT + "rh": {"type": "set_resp_headers", "content": {"response_headers": [
                {"name": "X-M", "value": HOSTILE_VALUE, "action": "append"},
                {"name": "X-New", "value": HOSTILE_VALUE, "action": "add"},
                {"name": "X-Gone", "action": "delete"},
            ]}},
        },
        "groups": {"g": {"domains": ["shop.example.com"]}},
        "apis": [
            {"name": BREAKOUT, "group": BREAKOUT, "method": "ANY", "path": "/a\";$x'b", "match_mode": "SWA",
             "host": BREAKOUT, "plugins": [BREAKOUT]},
            {"name": "g", "group": "g", "req_protocol": "HTTP", "method": "GET", "path": "/g",
             "plugins": [BREAKOUT, BREAKOUT + "rh"]},
            {"name": "m", "method": "GET", "path": "/m$;'\"", "plugins": [BREAKOUT, BREAKOUT + "rh"],
             "backend": {"type": "mock", "status": 200, "body": BREAKOUT + "\n}\nreturn 418;\n",
                         "headers": {"X-M": "v" + BREAKOUT.replace("\\", "/").strip()}}},
        ],
    }
    return json.dumps(policy)


def test_hostile_policy_is_escaped(tmp_path: Path) -> None:
    source = tmp_path / "hostile.json"
    source.write_text(_hostile_policy())
    text = export_nginx(load_policy(source), UPSTREAM, standalone=True).text
    shape = skeleton(text)
    assert shape["directives"] <= ALLOWED, shape["directives"] - ALLOWED
    assert shape["servers"] == 1 and shape["listens"] == [["127.0.0.1:8080"]]
    assert shape["locations"] == [["/"], ["@cg_unavailable"], ["@cg_timeout"]]
    assert shape["returns"] == {"200", "401", "403", "404", "502", "504"}
    # The hostile strings reach nginx whole, as the values they were (after nginx's own unescaping).
    words = [w for _, ws in statements(text) for w in ws]
    assert any("gw" in w and "return 418;" in w for w in words)


@needs_nginx
def test_hostile_policy_passes_nginx_t_and_answers_literally(tmp_path: Path) -> None:
    source = tmp_path / "hostile.json"
    source.write_text(_hostile_policy())
    with Backend() as backend, Nginx(source, backend.url) as nginx:
        status, headers, body = http("GET", nginx.url + "/m$;'\"", {"Origin": "https://app.example.com"})
        got = dict(headers)
        assert status == 200 and body == (BREAKOUT + "\n}\nreturn 418;\n").encode()
        assert got["X-M"] == HOSTILE_VALUE + "," + HOSTILE_VALUE and got["X-New"] == HOSTILE_VALUE  # plug-in edited
        status, headers, _ = http("GET", nginx.url + "/g?header=X-Gone:1", {"Host": "shop.example.com"})
        assert status == 200 and ("X-New", HOSTILE_VALUE) in headers and "X-Gone" not in dict(headers)
        status, headers, _ = http("OPTIONS", nginx.url + "/m$;'\"", {
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
        got = dict(headers)
        assert status == 200
        assert got["Access-Control-Allow-Headers"] == "X-$host,X-'#|`"
        assert got["Access-Control-Allow-Methods"] == "GET,PO$T,P#'|`"
        assert got["Access-Control-Expose-Headers"] == "X-$x"


@needs_nginx
def test_fuzzed_corpus_exports_pass_nginx_t(tmp_path: Path) -> None:
    """Every corpus policy that loads is exported (or refused with a located message) and nginx -t accepts
    it, with no directive, block or listen of its own."""
    (tmp_path / "corpus").mkdir()
    items = corpus.build(tmp_path / "corpus", corpus.SEED)
    exported = refused = 0
    for item in items:
        try:
            loaded = load_policy(item.path)
        except PolicyError:
            continue
        try:
            text = export_nginx(loaded, UPSTREAM, standalone=True, text=item.path.read_text(errors="replace")).text
        except ExportError as e:
            assert all(p.field for p in e.problems) and str(item.path) in str(e), str(e)
            refused += 1
            continue
        config = tmp_path / "nginx.conf"
        config.write_text(text)
        result = check(config, tmp_path)
        assert result.returncode == 0, f"{item.path.name}:\n{result.stderr}"
        shape = skeleton(text)
        assert shape["directives"] <= ALLOWED and shape["servers"] == 1, item.path.name
        assert len(shape["locations"]) == 3 and shape["listens"] == [["127.0.0.1:8080"]], item.path.name
        exported += 1
    print(f"\nfuzzed corpus: {len(items)} files, {exported} exported and passed nginx -t, {refused} refused")
    assert exported >= 40 and refused >= 1


LINT_CASES = sorted((Path(__file__).resolve().parents[1] / "lint_cases").glob("*.y*ml")) + sorted(
    (Path(__file__).resolve().parents[1] / "lint_cases").glob("*.json"))


@needs_nginx
def test_lint_cases_export_pass_nginx_t(tmp_path: Path) -> None:
    """The lint cases hold issue 18's shapes (regex-only, admits-nothing, set_resp_headers, groups and
    protocols): each that loads exports and passes nginx -t, or is refused with located messages."""
    exported = 0
    for case in LINT_CASES:
        try:
            loaded = load_policy(case)
        except PolicyError:
            continue
        try:
            text = export_nginx(loaded, UPSTREAM, standalone=True, text=case.read_text()).text
        except ExportError as e:
            assert all(p.field for p in e.problems) and str(case) in str(e), str(e)
            continue
        (tmp_path / "nginx.conf").write_text(text)
        result = check(tmp_path / "nginx.conf", tmp_path)
        assert result.returncode == 0, f"{case.name}:\n{result.stderr}"
        exported += 1
    assert exported >= 20, exported


@needs_nginx
@pytest.mark.parametrize("policy", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_policy_exports_pass_nginx_t(policy: Path, tmp_path: Path) -> None:
    standalone = export(policy, "http://127.0.0.1:3000", tmp_path / "nginx.conf")
    assert standalone.returncode == 0, standalone.stderr
    result = check(tmp_path / "nginx.conf", tmp_path)
    assert result.returncode == 0, result.stderr
    # The includable file, inside an http {} as Debian's /etc/nginx/nginx.conf includes conf.d/*.conf.
    included = export(policy, "http://127.0.0.1:3000", tmp_path / "corsgate.conf", standalone=False)
    assert included.returncode == 0, included.stderr
    # As Debian's modules-enabled/ loads headers-more where installed (the export uses it then).
    load = f"load_module {HEADERS_MORE};\n" if Path(HEADERS_MORE).exists() else ""
    (tmp_path / "main.conf").write_text(load + "events {}\nhttp {\n    include corsgate.conf;\n}\n")
    result = check(tmp_path / "main.conf", tmp_path)
    assert result.returncode == 0, result.stderr


@needs_nginx
def test_standalone_runs_unprivileged_with_paths_under_the_prefix(tmp_path: Path) -> None:
    """The same file runs from any writable prefix as a user without privileges (as root it is Nginx above)."""
    prefix = Path(tempfile.mkdtemp(prefix="corsgate-nginx-user-"))
    try:
        config = prefix / "nginx.conf"
        assert export(POLICIES / "apig-seed.yaml", "http://127.0.0.1:9", config, listen=f"127.0.0.1:{free_port()}").returncode == 0
        text = config.read_text()
        paths = [w for _, ws in statements(text) for w in ws[1:2] if ws[0].endswith(("_path", "pid"))]
        assert paths and not [p for p in paths if p.startswith("/")], paths
        command = [NGINX, "-p", str(prefix), "-c", str(config), "-t"]
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: cannot drop to an unprivileged user")
            shutil.chown(prefix, 65534, 65534)
            config.chmod(0o644)
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "test is successful" in result.stderr  # errors and notices go to stderr
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def _cli(tmp_path: Path, policy: str, *extra: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "policy.yaml"
    source.write_text(policy)
    out = tmp_path / "out.conf"
    return subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "cors-export"), "nginx", str(source),
         "--upstream", UPSTREAM, "-o", str(out), *extra], capture_output=True, text=True, timeout=60)


REFUSED = """\
version: 1
plugins:
  p:
    type: cors
    content:
      allow_origin: "*"
      allow_origin_regex: ["https://\\\\u0061pp\\\\.example\\\\.com"]
apis:
  - name: a
    method: GET
    path: /a
    plugins: [p]
  - name: m
    method: GET
    path: /m
    backend: {type: mock, status: 302, headers: {Vary: Origin}}
"""


def test_not_exportable_exits_1_with_located_messages(tmp_path: Path) -> None:
    result = _cli(tmp_path, REFUSED)
    assert result.returncode == 1 and not (tmp_path / "out.conf").exists()
    source = tmp_path / "policy.yaml"
    assert f"{source}:7: plugins.p.content.allow_origin_regex[0]:" in result.stderr
    assert f"{source}:16: apis[1].backend.status:" in result.stderr
    assert f"{source}:16: apis[1].backend.headers.Vary:" in result.stderr


def test_warnings_are_located_and_the_file_written(tmp_path: Path) -> None:
    result = _cli(tmp_path, (POLICIES / "default.yaml").read_text())
    assert result.returncode == 0 and (tmp_path / "out.conf").exists()
    assert f"warning: {tmp_path / 'policy.yaml'}:19: plugins.debug-any-origin.content.expose_headers:" in result.stderr


def test_bad_arguments_exit_1(tmp_path: Path) -> None:
    assert _cli(tmp_path, "version: 1\n", "--listen", "nowhere").returncode == 1
    bad = _cli(tmp_path, "version: 1\napis: [{name: a}]\n")
    assert bad.returncode == 1 and "policy.yaml:2" in bad.stderr


def test_apig_subcommand_hands_over_or_says_why(tmp_path: Path) -> None:
    source = tmp_path / "policy.yaml"
    source.write_text((POLICIES / "apig-seed.yaml").read_text())
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "cors-export"), "apig", str(source)],
        capture_output=True, text=True, timeout=60)
    try:
        import addon.tools.apig_export  # noqa: F401
    except ImportError:
        assert result.returncode == 1 and "APIG exporter is not available" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
