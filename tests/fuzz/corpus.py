"""The fuzzed policy corpus (issue 7), generated deterministically from a seed at test time.

Every file is derived from the shipped policies (as YAML and as JSON) or built from
scratch, in classes a careless editor, a broken tool or a hostile file produces:
truncations, byte mutations, wrong types everywhere, huge files at and past the
loader's size caps, deep nesting, YAML anchor/alias bombs, non-UTF-8 bytes, YAML tags
and directives, JSON oddities, and well-typed but adversarial values.

`build(directory, seed)` writes the files and returns what it wrote; nothing is
stored in the repository, so the corpus always matches the current shipped policies.
"""

from __future__ import annotations

import copy
import io
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from addon.core import policy as policy_module

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SEED = 20261128


@dataclass(frozen=True)
class Item:
    """One corpus file: where it is and which class of damage it carries."""

    path: Path
    kind: str


def yaml_caps() -> tuple[int, int]:
    """(largest YAML, largest JSON) the loader reads; a YAML-specific cap is used when policy.py has one."""
    general = policy_module.MAX_POLICY_BYTES
    return getattr(policy_module, "MAX_YAML_BYTES", general), general


def _sources() -> dict[str, tuple[str, bytes]]:
    """Shipped policies as YAML bytes and as JSON bytes, by name: {name: (suffix, data)}."""
    out: dict[str, tuple[str, bytes]] = {}
    for path in sorted(POLICIES.glob("*.yaml")):
        data = path.read_bytes()
        out[path.stem] = (".yaml", data)
        document = YAML(typ="safe", pure=True).load(data.decode())
        out[path.stem + "-json"] = (".json", json.dumps(document, indent=2).encode())
    return out


def _documents() -> dict[str, Any]:
    return {path.stem: YAML(typ="safe", pure=True).load(path.read_text()) for path in sorted(POLICIES.glob("*.yaml"))}


def _dump_yaml(document: Any) -> bytes:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(document, out)
    return out.getvalue().encode()


# -- classes ------------------------------------------------------------------------------------

def shipped(sources: dict[str, tuple[str, bytes]]) -> Iterator[tuple[str, str, bytes]]:
    """The undamaged sources: the control that must load."""
    for name, (suffix, data) in sources.items():
        yield f"{name}{suffix}", "shipped", data


def truncated(rnd: random.Random, sources: dict[str, tuple[str, bytes]]) -> Iterator[tuple[str, str, bytes]]:
    """Every source cut short: at the very start, mid-token, mid-line, one byte before the end."""
    for name, (suffix, data) in sources.items():
        cuts = {0, 1, len(data) // 2, len(data) - 1} | {rnd.randrange(len(data)) for _ in range(18)}
        for cut in sorted(cuts):
            yield f"{name}-cut{cut}{suffix}", "truncated", data[:cut]


_INSERTS = (b":", b"- ", b"[", b"{", b"}", b"]", b"\t", b"\x00", b"\xff", b"&a ", b"*a", b"!!python/object ", b"\r",
            b"\n  ", b'"', b"'", b"#", b"%", b"@", b"`", b"|", b">", b"---\n", b"...\n", b"? ", b",")


def mutated(rnd: random.Random, sources: dict[str, tuple[str, bytes]]) -> Iterator[tuple[str, str, bytes]]:
    """Random byte flips, deletions, duplications, inserted syntax and shuffled lines."""
    for name, (suffix, data) in sources.items():
        for n in range(16):
            buf = bytearray(data)
            for _ in range(rnd.randint(1, 4)):
                op = rnd.randrange(6)
                at = rnd.randrange(len(buf))
                if op == 0:
                    buf[at] = rnd.randrange(256)
                elif op == 1:
                    del buf[at:at + rnd.randint(1, 40)]
                elif op == 2:
                    span = buf[at:at + rnd.randint(1, 80)]
                    buf[at:at] = span
                elif op == 3:
                    buf[at:at] = rnd.choice(_INSERTS)
                elif op == 4:
                    lines = bytes(buf).split(b"\n")
                    i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
                    lines[i], lines[j] = lines[j], lines[i]
                    buf = bytearray(b"\n".join(lines))
                else:
                    lines = bytes(buf).split(b"\n")
                    i = rnd.randrange(len(lines))
                    lines[i] = b" " * rnd.randint(1, 5) + lines[i]
                    buf = bytearray(b"\n".join(lines))
            yield f"{name}-mut{n}{suffix}", "mutated", bytes(buf)


WRONG_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 7, 2**70, 1.5, float("inf"), "", "x", "yes", "1", "ANY,GET", [], [1], ["a", None],
    {}, {"a": 1}, {"type": "cors"}, "https://*.", "*" * 5000,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(document)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def wrong_types(rnd: random.Random, documents: dict[str, Any]) -> Iterator[tuple[str, str, bytes]]:
    """Every field of every shipped policy (and the whole document) replaced by values of other types."""
    combos = [(name, path, value) for name, doc in documents.items() for path in _paths(doc) for value in WRONG_VALUES]
    for k, (name, path, value) in enumerate(sorted(rnd.sample(combos, 170), key=repr)):
        document = _replace(documents[name], path, value)
        where = ".".join(map(str, path)) or "root"
        if k % 2:
            text = json.dumps(document, allow_nan=True).encode()
            yield f"{name}-type{k}-{where[:40]}.json", "wrong-type", text
        else:
            yield f"{name}-type{k}-{where[:40]}.yaml", "wrong-type", _dump_yaml(document)


def _apis_yaml(n: int, start: int = 0) -> str:
    return "".join(f"  - name: api{i}\n    method: GET\n    path: /p{i}/{{id}}\n    plugins: [web]\n"
                   for i in range(start, start + n))


_YAML_HEAD = ("version: 1\nplugins:\n  web:\n    type: cors\n    content: {allow_origin: 'https://app.example.com'}\n"
              "apis:\n")


def _padded(data: bytes, size: int, filler: bytes) -> bytes:
    """data grown to exactly size bytes with filler (a YAML comment, JSON whitespace)."""
    assert len(data) + len(filler) <= size, (len(data), size)
    return data + filler + filler[-1:] * (size - len(data) - len(filler))


def _yaml_of_size(size: int, bad: bool) -> bytes:
    """A YAML policy of exactly `size` bytes (many APIs); with bad=True its last API has a wrong method."""
    per_api = len(_apis_yaml(1, 10**5))
    text = _YAML_HEAD + _apis_yaml(max(1, (size - len(_YAML_HEAD) - 200) // per_api), 10**5)
    if bad:
        text += "  - {name: bad, method: GOT, path: /bad}\n"
    return _padded(text.encode(), size, b"#")


def _json_of_size(size: int, bad: bool) -> bytes:
    api = {"name": "api100000", "method": "GET", "path": "/p100000/{id}", "plugins": ["web"]}
    per_api = len(json.dumps(api)) + 2
    count = max(1, (size - 300) // per_api)
    apis = [{**api, "name": f"api{i}", "path": f"/p{i}/{{id}}"} for i in range(10**5, 10**5 + count)]
    if bad:
        apis.append({"name": "bad", "method": "GOT", "path": "/bad"})
    doc = {"version": 1, "plugins": {"web": {"type": "cors", "content": {"allow_origin": "https://app.example.com"}}},
           "apis": apis}
    return _padded(json.dumps(doc, separators=(",", ":")).encode(), size, b" ")


def huge() -> Iterator[tuple[str, str, bytes]]:
    """At and past the size caps the loader enforces, in several shapes."""
    yaml_cap, json_cap = yaml_caps()
    for label, size in (("at-cap", yaml_cap - 1024), ("past-cap", yaml_cap + 1)):
        yield f"huge-yaml-apis-{label}.yaml", "huge", _yaml_of_size(size, bad=False)
        yield f"huge-yaml-apis-{label}-bad.yaml", "huge", _yaml_of_size(size, bad=True)
        scalar = (_YAML_HEAD.replace("apis:\n", "") + "gateway: {server: '" + "s" * (size - 200) + "'}\n").encode()
        yield f"huge-yaml-scalar-{label}.yaml", "huge", _padded(scalar, size, b"#")
        yield f"huge-yaml-comment-{label}.yaml", "huge", _padded((_YAML_HEAD + _apis_yaml(1)).encode(), size, b"#")
    for label, size in (("at-cap", json_cap - 1024), ("past-cap", json_cap + 1)):
        yield f"huge-json-apis-{label}.json", "huge", _json_of_size(size, bad=False)
        yield f"huge-json-apis-{label}-bad.json", "huge", _json_of_size(size, bad=True)
    yield "huge-json-origins.json", "huge", json.dumps({
        "version": 1, "apis": [{"name": "a", "method": "ANY", "path": "/", "plugins": ["web"]}],
        "plugins": {"web": {"type": "cors", "content": {
            "allow_origin": [f"https://h{i}.example.com" for i in range(20000)]}}},
    }).encode()
    yield "huge-json-regexes.json", "huge", json.dumps({
        "version": 1, "apis": [{"name": "a", "method": "ANY", "path": "/", "plugins": ["web"]}],
        "plugins": {"web": {"type": "cors", "content": {
            "allow_origin": "https://app.example.com", "allow_origin_regex": [f"^https://h{i}\\.example\\.com$"
                                                                            for i in range(2000)]}}},
    }).encode()
    yield "huge-json-plugins.json", "huge", json.dumps({
        "version": 1, "apis": [{"name": "a", "method": "ANY", "path": "/", "plugins": [f"p{i}x" for i in range(3000)]}],
        "plugins": {f"p{i}": {"type": "cors", "content": {"allow_origin": "*"}} for i in range(3000)},
    }).encode()
    stem = "".join(random.Random(SEED).choices("abcdefghijklmnopqrstuvwxyz", k=50000))
    yield "huge-json-long-names.json", "huge", json.dumps({  # near-miss names make the did-you-mean search work hard
        "version": 1,
        "apis": [{"name": "a", "method": "ANY", "path": "/", "plugins": [f"{stem}{i}x" for i in range(20)]}],
        "plugins": {f"{stem}{i}": {"type": "cors", "content": {"allow_origin": "*"}} for i in range(20)},
    }).encode()
    yield "huge-json-unknown-key.json", "huge", json.dumps({"version": 1, "k" * 1_000_000: 1}).encode()
    one_line = '{"version": 1, "apis": [' + "1," * (json_cap // 2 - 600) + "1]}"  # a value per 2 bytes
    yield "huge-json-one-line-list.json", "huge", one_line.encode()


def deep() -> Iterator[tuple[str, str, bytes]]:
    """Nesting: YAML flow and block collections, JSON arrays and objects."""
    for depth in (10, 30, 64, 100, 150, 500, 1000, 2000, 100_000):
        lists, maps = "[" * depth + "]" * depth, "{a: " * depth + "1" + "}" * depth
        yield f"deep-yaml-flow-{depth}.yaml", "deep", f"version: 1\ngroup: {lists}\n".encode()
        yield f"deep-yaml-flowmap-{depth}.yaml", "deep", f"version: 1\nx: {maps}".encode()
        yield f"deep-json-array-{depth}.json", "deep", ('{"version": 1, "apis": ' + lists + "}").encode()
        yield f"deep-json-object-{depth}.json", "deep", ('{"version": 1, "x": ' + '{"a": ' * depth + "1" + "}" * depth
                                                         + "}").encode()
        if depth <= 1000:
            yield f"deep-yaml-block-{depth}.yaml", "deep", ("version: 1\ngroup:\n" + "".join(
                " " * (i + 1) + "-\n" for i in range(depth)) + " " * (depth + 1) + "- x\n").encode()
            yield f"deep-yaml-compact-{depth}.yaml", "deep", ("version: 1\ngroup: " + "- " * depth + "x\n").encode()
        yield f"unbalanced-{depth}.yaml", "deep", ("version: 1\ngroup: " + "[" * depth).encode()


def anchors() -> Iterator[tuple[str, str, bytes]]:
    """YAML anchors and aliases: billion laughs, merge-key bombs, recursion, aliases as keys."""
    for levels, width in ((5, 5), (9, 9), (10, 10), (20, 2), (30, 2)):
        lines = ["version: 1", "a0: &a0 [lol]"]
        for i in range(1, levels):
            lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
        lines.append(f"group: *a{levels - 1}")
        yield f"laughs-{levels}x{width}.yaml", "anchors", "\n".join(lines).encode()
    merge = ["version: 1", "m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(50)) + "}"]
    for i in range(1, 20):
        merge.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], x{i}: {i}}}")
    yield "merge-bomb.yaml", "anchors", "\n".join(merge).encode()
    yield "recursive-seq.yaml", "anchors", b"version: 1\ngroup: &r [*r]\n"
    yield "recursive-map.yaml", "anchors", b"version: 1\nx: &r {a: *r}\n"
    yield "alias-as-key.yaml", "anchors", b"version: 1\nk: &k apis\n*k : []\n"
    yield "alias-in-plugins.yaml", "anchors", (
        b"version: 1\nplugins:\n  a: &p {type: cors, content: {allow_origin: '*'}}\n  b: *p\n"
        b"apis: [{name: x, method: GET, path: /, plugins: [a]}]\n")
    yield "anchor-only.yaml", "anchors", b"version: &v 1\napis: []\n"
    yield "undefined-alias.yaml", "anchors", b"version: 1\ngroup: *nowhere\n"
    yield "star-in-strings.yaml", "anchors", (
        b"version: 1\nplugins:\n  w: {type: cors, content: {allow_origin: '*', allow_methods: '*', "
        b"allow_headers: \"*\"}}\napis: [{name: x, method: GET, path: /, plugins: [w]}]\n")


def encodings() -> Iterator[tuple[str, str, bytes]]:
    """Bytes that are not UTF-8, and UTF-8 that is unusual."""
    base = (POLICIES / "strict-allowlist.yaml").read_bytes()
    yield "latin1.yaml", "bytes", base.replace(b"web-app", "wéb-app".encode("latin-1"))
    yield "utf16-bom.yaml", "bytes", base.decode().encode("utf-16")
    yield "utf16le.yaml", "bytes", base.decode().encode("utf-16-le")
    yield "utf32.yaml", "bytes", base.decode().encode("utf-32")
    yield "overlong-slash.yaml", "bytes", base.replace(b"/api", b"\xc0\xafapi")
    yield "encoded-surrogate.yaml", "bytes", base.replace(b"web-app", b"web\xed\xa0\x80app")
    yield "lone-continuation.yaml", "bytes", base + b"\n# \x80\n"
    yield "truncated-sequence.yaml", "bytes", base + b"\n# \xe2\x82"
    yield "invalid-start-byte.yaml", "bytes", b"\xfe\xff" + base
    yield "utf8-bom.yaml", "bytes", b"\xef\xbb\xbf" + base
    yield "utf8-bom.json", "bytes", b"\xef\xbb\xbf" + json.dumps(YAML(typ="safe", pure=True).load(base)).encode()
    yield "crlf.yaml", "bytes", base.replace(b"\n", b"\r\n")
    yield "lone-cr.yaml", "bytes", base.replace(b"\n", b"\r")
    yield "nel-line-break.yaml", "bytes", base.replace(b"\n", "\u0085".encode())
    yield "line-separator.yaml", "bytes", base.replace(b"\n", "\u2028".encode())
    yield "nul-in-comment.yaml", "bytes", base + b"\n# \x00\n"
    yield "nul-in-value.json", "bytes", b'{"version": 1, "gateway": {"server": "a\\u0000b"}}'
    yield "escaped-surrogate.json", "bytes", b'{"version": 1, "gateway": {"server": "\\ud800"}}'
    yield "form-feed.yaml", "bytes", base.replace(b"version", b"\x0cversion", 1)
    yield "c1-control.yaml", "bytes", base + "\n# \u0090\n".encode()
    yield "private-use.yaml", "bytes", base.replace(b"web-app", "web-\ue000".encode())
    yield "emoji.yaml", "bytes", base.replace(b"group: web", "group: 🌐".encode())
    rnd = random.Random(SEED)
    for n in range(12):
        yield f"binary-{n}.yaml", "bytes", bytes(rnd.randrange(256) for _ in range(rnd.choice((1, 16, 512, 4096))))
    yield "empty.yaml", "bytes", b""
    yield "empty.json", "bytes", b""
    yield "whitespace.yaml", "bytes", b" \n\t\n"
    yield "only-comment.yaml", "bytes", b"# nothing\n"


def tags_and_directives() -> Iterator[tuple[str, str, bytes]]:
    """YAML tags (python/object must never construct), directives, several documents."""
    head = b"version: 1\n"
    for tag in (b"!!python/object/apply:os.system ['true']", b"!!python/name:os.system", b"!!binary aGVsbG8=",
                b"!!timestamp 2001-12-14", b"!!set {a, b}", b"!!omap [a: 1]", b"!!float 1", b"!!int '1'",
                b"!custom x", b"!<tag:example.com,2000:x> y", b"!!str 1", b"!!null ''", b"!!bool yes"):
        yield f"tag-{tag[:12].decode(errors='replace').strip('!<:/ ')}.yaml", "tags", head + b"group: " + tag + b"\n"
    for name, text in (
        ("tag-on-version", b"version: !!str 1\n"),
        ("directive-yaml11", b"%YAML 1.1\n---\nversion: 1\napis: []\ngateway: {request_id: yes}\n"),
        ("directive-yaml13", b"%YAML 1.3\n---\nversion: 1\n"),
        ("directive-tag", b"%TAG ! tag:example.com,2000:\n---\nversion: !x 1\n"),
        ("two-documents", b"version: 1\n---\nversion: 1\n"),
        ("document-end", b"version: 1\n...\ngarbage: [\n"),
        ("duplicate-key", b"version: 1\nversion: 1\n"),
        ("complex-key", b"version: 1\n? [a, b]\n: c\n"),
        ("null-key", b"version: 1\nplugins: {~: {type: cors, content: {allow_origin: '*'}}}\n"),
        ("bool-key", b"version: 1\nplugins: {true: {type: cors, content: {allow_origin: '*'}}}\n"),
        ("int-key", b"version: 1\n1: 2\n"),
        ("yaml-octal", b"version: 0o1\n"),
        ("yaml-sexagesimal", b"version: 1\nplugins: {w: {type: cors, content: {allow_origin: '*', max_age: 1:30}}}\n"),
        ("yaml-norway", b"version: 1\ngateway: {request_id: no}\n"),
    ):
        yield f"{name}.yaml", "tags", text


def json_oddities() -> Iterator[tuple[str, str, bytes]]:
    for name, text in (
        ("nan", '{"version": NaN}'), ("infinity", '{"version": Infinity}'), ("neg-infinity", '{"version": -Infinity}'),
        ("big-int", '{"version": ' + "1" * 5000 + "}"),
        ("big-int-max-age", '{"version": 1, "plugins": {"w": {"type": "cors", "content": {"allow_origin": "*", '
                            '"max_age": ' + "9" * 5000 + "}}}}"),
        ("big-float", '{"version": 1e400}'), ("tiny-float", '{"version": 1e-400}'), ("float-one", '{"version": 1.0}'),
        ("duplicate-keys", '{"version": 1, "version": 2}'), ("trailing-comma", '{"version": 1,}'),
        ("comment", '{"version": 1 /* c */}'), ("single-quotes", "{'version': 1}"), ("unquoted-key", "{version: 1}"),
        ("array-root", "[1, 2]"), ("string-root", '"version"'), ("number-root", "1"), ("null-root", "null"),
        ("yaml-in-json", "version: 1\napis: []\n"), ("two-objects", '{"version": 1}{"version": 1}'),
        ("unterminated-string", '{"version": "1'), ("control-char", '{"version": "\x01"}'),
        ("bool-version", '{"version": true}'), ("string-version", '{"version": "1"}'),
    ):
        yield f"json-{name}.json", "json", text.encode()
    yield "json-big-int-yaml.yaml", "json", ("version: " + "1" * 5000 + "\n").encode()


def adversarial_values() -> Iterator[tuple[str, str, bytes]]:
    """Well-formed files with values that are hostile: CR/LF, huge regex repeats, catastrophic patterns, odd paths."""
    def policy(content: dict[str, Any], api: dict[str, Any] | None = None) -> bytes:
        api = api or {"name": "a", "method": "ANY", "path": "/", "match_mode": "SWA", "plugins": ["w"]}
        doc = {"version": 1, "plugins": {"w": {"type": "cors", "content": content}}, "apis": [api]}
        return json.dumps(doc).encode()

    base = {"allow_origin": "https://app.example.com"}
    for name, content in (
        ("origin-crlf", {"allow_origin": "https://a.example.com\r\nX-Injected: 1"}),
        ("origin-nul", {"allow_origin": "https://a.example.com\x00"}),
        ("origin-unicode", {"allow_origin": "https://bücher.example"}),
        ("origin-path", {"allow_origin": "https://a.example.com/path"}),
        ("origin-userinfo", {"allow_origin": "https://u@a.example.com"}),
        ("origin-wild-middle", {"allow_origin": "https://a.*.example.com"}),
        ("origin-wild-ip", {"allow_origin": "http://*.0.0.1"}),
        ("origin-bad-ipv6", {"allow_origin": "https://[:]"}),
        ("origin-port-huge", {"allow_origin": "https://a.example.com:99999"}),
        ("origin-empty-list", {"allow_origin": ""}),
        ("origin-commas", {"allow_origin": ",,,"}),
        ("regex-huge-repeat", {**base, "allow_origin_regex": ["a{4294967296}"]}),
        ("regex-huge-repeat-2", {**base, "allow_origin_regex": ["x{99999999999999999999}"]}),
        ("regex-invalid", {**base, "allow_origin_regex": ["("]}),
        ("regex-lookbehind", {**base, "allow_origin_regex": ["(?<=a+)b"]}),
        ("regex-deep-groups", {**base, "allow_origin_regex": ["(" * 5000 + ")" * 5000]}),
        ("regex-many-groups", {**base, "allow_origin_regex": ["(a)" * 10000]}),
        ("regex-catastrophic", {**base, "allow_origin_regex": ["^https://(a+)+$"]}),
        ("methods-crlf", {**base, "allow_methods": "GET\r\nX: 1"}),
        ("methods-space", {**base, "allow_methods": "GE T"}),
        ("headers-colon", {**base, "allow_headers": "X-A:1"}),
        ("expose-unicode", {**base, "expose_headers": "X-Ä"}),
        ("max-age-negative", {**base, "max_age": -1}),
        ("max-age-float", {**base, "max_age": 1.5}),
        ("max-age-string", {**base, "max_age": "600"}),
        ("credentials-string", {**base, "allow_credentials": "true"}),
        ("preflight-unknown", {**base, "preflight": "answer\n"}),
        ("unknown-field", {**base, "allow_orign": "*"}),
    ):
        yield f"value-{name}.json", "values", policy(content)
    for name, api in (
        ("path-no-slash", {"name": "a", "method": "GET", "path": "users"}),
        ("path-crlf", {"name": "a", "method": "GET", "path": "/a\r\nb"}),
        ("path-rest-middle", {"name": "a", "method": "GET", "path": "/{a+}/b"}),
        ("path-double-slash", {"name": "a", "method": "GET", "path": "//a"}),
        ("path-huge", {"name": "a", "method": "GET", "path": "/" + "a/" * 50000 + "b"}),
        ("path-many-params", {"name": "a", "method": "GET", "path": "/" + "/".join(f"{{p{i}}}" for i in range(5000))}),
        ("method-lower", {"name": "a", "method": "get", "path": "/"}),
        ("host-crlf", {"name": "a", "method": "GET", "path": "/", "host": "a\r\nb"}),
        ("mock-header-crlf", {"name": "a", "method": "GET", "path": "/",
                              "backend": {"type": "mock", "headers": {"X-A": "1\r\nX-B: 2"}}}),
        ("mock-header-name", {"name": "a", "method": "GET", "path": "/",
                              "backend": {"type": "mock", "headers": {"X A": "1"}}}),
        ("mock-status", {"name": "a", "method": "GET", "path": "/", "backend": {"type": "mock", "status": 99}}),
        ("mock-header-surrogate", {"name": "a", "method": "GET", "path": "/",
                                   "backend": {"type": "mock", "headers": {"X-A": "\ud800"}}}),
        ("mock-header-unicode", {"name": "a", "method": "GET", "path": "/",
                                 "backend": {"type": "mock", "headers": {"X-A": "\u2028"}}}),
        ("plugin-missing", {"name": "a", "method": "GET", "path": "/", "plugins": ["nope"]}),
    ):
        yield f"api-{name}.json", "values", policy(base, api)
    for name, server in (("crlf", "gw\r\nX-Injected: 1"), ("lf", "gw\nX"), ("nul", "gw\x00"), ("surrogate", "\udcff"),
                         ("esc", "gw\x1b[2J"), ("padded", " gw ")):
        doc = {"version": 1, "gateway": {"server": server}, "apis": [{"name": "a", "method": "GET", "path": "/"}]}
        yield f"gateway-server-{name}.json", "values", json.dumps(doc).encode()
    ties = {"version": 1, "apis": [{"name": f"t{i}", "method": "GET", "path": "/same"} for i in range(2000)]}
    yield "api-ties.json", "values", json.dumps(ties).encode()


def build(directory: Path, seed: int = SEED) -> list[Item]:
    """Write the corpus into directory; the same seed always gives the same files."""
    rnd = random.Random(seed)
    sources = _sources()
    generators: list[Callable[[], Iterator[tuple[str, str, bytes]]]] = [
        lambda: shipped(sources),
        lambda: truncated(rnd, sources),
        lambda: mutated(rnd, sources),
        lambda: wrong_types(rnd, _documents()),
        huge, deep, anchors, encodings, tags_and_directives, json_oddities, adversarial_values,
    ]
    items: list[Item] = []
    for generate in generators:
        for name, kind, data in generate():
            path = directory / f"{len(items):04d}-{_safe(name)}"
            path.write_bytes(data)
            items.append(Item(path, kind))
    return items


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in name)
