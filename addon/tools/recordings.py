"""Recorded traffic as plain exchange records: mitmproxy flow files and HAR files, read by mitmproxy's readers.

What `cors-learn` and `cors-check --flows` work on. A flow file (`mitmdump -w`) is read flow by flow
with mitmproxy's own tnetstring reader and format migration (`mitmproxy.io.tnetstring`,
`mitmproxy.io.compat`, what `FlowReader` uses), parsing only the fields an exchange needs; a HAR
(Chromium, Firefox, Playwright's `record_har_path`) entry by entry with mitmproxy's own HAR reader
(`mitmproxy.io.har.request_to_flow`, in 11.0 and 12.x alike), so one broken entry is counted instead
of failing the whole file as `FlowReader` would. A preflight is paired with the
actual request that follows it (same origin, URL and method). Traffic that says nothing about CORS is
counted by reason, never raised: no Origin, same-origin, no-cors, non-HTTP flows, broken entries.
A file that is neither a flow file nor a HAR raises `RecordingError` with the file and where it broke.

Thin HARs (a browser's record of a failing app): failed entries have status 0 or -1, no response headers
and often no Origin; the page's origin is then taken from Referer, or from the page the entry belongs to.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from mitmproxy.io import compat, har, tnetstring
from mitmproxy.version import FLOW_FORMAT_VERSION

from addon import verdict
from addon.core.fields import split_list

Headers = tuple[tuple[str, str], ...]

# Reasons an entry teaches nothing about CORS (the keys of Recording.skipped).
NO_ORIGIN = "no Origin (and no Referer or page to tell it)"
SAME_ORIGIN = "same-origin"
NO_CORS = "no-cors (navigation, <img>, <script> and the like)"
NOT_HTTP = "not HTTP (TCP, UDP, DNS, WebSocket messages)"
BROKEN = "broken entry"
_EXAMPLES = 5  # broken entries named per file


class RecordingError(Exception):
    """A file that is not a flow file or a HAR, or breaks part-way: str() says which file and where."""


@dataclass(frozen=True, slots=True)
class Preflight:
    """A recorded preflight: what it asked and what it got (status None: no response recorded)."""

    where: str
    request_method: str  # Access-Control-Request-Method
    request_headers: tuple[str, ...]  # Access-Control-Request-Headers items, lower-cased
    status: int | None
    response_headers: Headers
    upstream_headers: Headers | None  # as for Exchange


@dataclass(frozen=True, slots=True)
class Exchange:
    """One cross-origin request of a page, with its preflight when one was recorded.

    `status` None means no response was recorded: the request failed in the browser (a thin HAR), or the
    browser never sent it because its preflight failed (`sent` False). `upstream_headers` is the response as
    the upstream sent it, where the recording shows which fields a corsgate in front of it added.
    """

    where: str  # FILE#N: the flow's or entry's index, from 1
    started: float | None  # epoch seconds
    origin: str  # the page's origin
    origin_from: str  # "Origin", "Referer" or "page"
    method: str
    url: str
    request_headers: Headers
    status: int | None
    response_headers: Headers
    upstream_headers: Headers | None  # None: the gateway made the response, the upstream's is unknown
    preflight: Preflight | None = None
    sent: bool = True
    error: str = ""  # the browser's or the proxy's error, if the recording has one

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def cookies(self) -> bool:
        """The request carried cookies: credentials mode `include` (a proxy cannot see it otherwise)."""
        return any(name.lower() == "cookie" for name, _ in self.request_headers)

    @property
    def credentialed(self) -> bool:
        """Cookies or an Authorization header: what makes a learned plug-in allow credentials."""
        return any(name.lower() in ("cookie", "authorization") for name, _ in self.request_headers)

    @property
    def unsafe_headers(self) -> tuple[str, ...]:
        """The request headers a preflight names: its recorded list, else computed from the request."""
        if self.preflight is not None:
            return self.preflight.request_headers
        headers = self.request_headers
        fields = {k.lower(): v.strip().lower() for k, v in headers}
        if fields.get("pragma") == "no-cache" and fields.get("cache-control") == "no-cache":
            # What Chromium's network stack adds below CORS for `cache: 'no-store'`: never in a preflight's list.
            headers = tuple((k, v) for k, v in headers if k.lower() not in ("pragma", "cache-control"))
        return tuple(verdict.unsafe_request_headers(headers))


@dataclass
class Recording:
    """What reading some files gave: the cross-origin exchanges and a count of everything else."""

    files: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    broken: list[str] = field(default_factory=list)  # where and why, the first few per file
    seen: int = 0  # entries read, of every kind
    first: float | None = None
    last: float | None = None

    def _saw(self, when: float | None) -> None:
        if when is None:
            return
        self.first = when if self.first is None else min(self.first, when)
        self.last = when if self.last is None else max(self.last, when)


def read(paths: Sequence[str | Path], recording: Recording | None = None) -> Iterator[Exchange]:
    """The cross-origin exchanges of every file, in order; counts go to `recording`. Raises RecordingError."""
    recording = recording if recording is not None else Recording()
    for path in paths:
        recording.files.append(str(path))
        yield from _read_file(str(path), recording)


def _read_file(path: str, recording: Recording) -> Iterator[Exchange]:
    try:
        fo = open(path, "rb")
    except OSError as e:
        raise RecordingError(f"{path}: cannot read: {e.strerror or e}") from None
    with fo:
        head = fo.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        fo.seek(0)
        if head.startswith(b"{"):
            entries = _har_entries(path, fo.read())
            yield from _pair(_from_har(path, entries, recording), recording)
        elif head == b"" or head[:1].isdigit():
            yield from _pair(_from_flows(path, fo, recording), recording)
        else:
            raise RecordingError(f"{path}: not a mitmproxy flow file (mitmdump -w) or a HAR file "
                                 f"(it starts with {head[:16]!r})")


# -- flow files ----------------------------------------------------------------------------------------


def _from_flows(path: str, fo: BinaryIO, recording: Recording) -> Iterator[_Seen]:
    n = 0
    while True:
        offset = fo.tell()
        try:
            state = _next_state(fo)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, UnicodeDecodeError, RecursionError,
                OverflowError) as e:
            raise RecordingError(f"{path}: flow #{n + 1} (byte {offset}): not a readable mitmproxy flow "
                                 f"({_short(e) or 'invalid data'}); the file is truncated or corrupted") from None
        if state is None:
            return
        n += 1
        recording.seen += 1
        where = f"{path}#{n}"
        if state.get("type") != "http" or state.get("websocket") is not None:
            recording.skipped[NOT_HTTP] += 1
            continue
        try:
            seen = _seen_flow(where, state)
        except Exception as e:  # a flow that parses but holds nonsense: counted, never a crash
            _broken(recording, path, where, e)
            continue
        recording._saw(seen.started)
        yield seen


def _next_state(fo: BinaryIO) -> dict[str, Any] | None:
    """The next flow's state as mitmproxy's FlowReader reads it (tnetstring, migrated by mitmproxy's compat),
    or None at the end. Only the fields a CORS exchange needs are parsed: the connections' and the bodies'
    share of a flow is skipped, which makes reading a large file about twice as fast as FlowReader's
    Flow.from_state. A flow of an older format is read whole and migrated as FlowReader would."""
    length = b""
    while (c := fo.read(1)).isdigit() and len(length) <= 12:
        length += c
    if c == b"" and not length:
        return None
    if c != b":" or not length:
        raise ValueError("missing or invalid length prefix")
    payload = fo.read(int(length))
    tag = fo.read(1)
    if len(payload) != int(length) or tag != b"}":
        raise ValueError("truncated" if len(payload) != int(length) or not tag else "not a flow (no mapping)")
    data = memoryview(payload)
    state: dict[Any, Any] = {}
    while data:
        key, data = tnetstring.pop(data)
        if key in _FLOW_FIELDS:
            state[key], data = tnetstring.pop(data)
        else:
            size, rest = tnetstring.split(data, b":")
            if len(rest) <= size:
                raise ValueError("truncated value")
            data = rest[size + 1:]
    if state.get("version") != FLOW_FORMAT_VERSION:
        state = compat.migrate_flow(tnetstring.parse(ord("}"), memoryview(payload)))  # type: ignore[arg-type]
    return state


_FLOW_FIELDS = frozenset({"type", "version", "request", "response", "error", "metadata", "websocket"})


def _seen_flow(where: str, state: dict[str, Any]) -> _Seen:
    request, response = state["request"], state.get("response")
    metadata = state.get("metadata") or {}
    touched = "corsgate.trail" in metadata  # corsgate decided on it: its Access-Control-* fields are its own
    answered = bool(metadata.get("corsgate.answered"))
    status = int(response["status_code"]) if response is not None else None
    response_headers = _pairs(response["headers"]) if response is not None else ()
    if response is None or answered:
        upstream: Headers | None = None
    elif touched:
        upstream = tuple((k, v) for k, v in response_headers if not k.lower().startswith("access-control-"))
    else:
        upstream = response_headers
    error = state.get("error")
    return _Seen(where, request.get("timestamp_start"), _str(request["method"]), _checked(_url(request)),
                 _pairs(request["headers"]), status, response_headers, upstream,
                 _str(error.get("msg", "")) if isinstance(error, dict) else "", None)


def _url(request: dict[str, Any]) -> str:
    """The request's URL from its state, as mitmproxy's Request.url spells it."""
    scheme, host, port = _str(request["scheme"]), _str(request["host"]), int(request["port"])
    authority = f"[{host}]" if ":" in host else host
    if port != {"http": 80, "https": 443}.get(scheme):
        authority += f":{port}"
    path = _str(request["path"])
    return f"{scheme}://{authority}{path}" if path.startswith("/") else f"{scheme}://{authority}/{path}"


def _checked(url: str) -> str:
    """A URL whose host and port parse (ValueError otherwise: the entry is broken)."""
    parts = urlsplit(url)
    _ = parts.port, parts.hostname
    return url


def _str(value: Any) -> str:
    return _text(value) if isinstance(value, bytes) else str(value)


# -- HAR files -----------------------------------------------------------------------------------------


def _har_entries(path: str, data: bytes) -> _HarEntries:
    """The entries of a HAR, decoded one at a time as they are read, and its pages' URLs by id (filled in
    before the first entry); RecordingError names the line of a JSON error, when the reader reaches it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise RecordingError(f"{path}:{line}: not UTF-8 (byte {e.start}): a HAR file is JSON in UTF-8") from None
    pages: dict[str, str] = {}
    return _located(path, _walk(_Scanner(text), pages)), pages


_HarEntries = tuple[Iterator[Any], dict[str, str]]
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class _Scanner:
    """JSON text walked member by member with the json module's own decoder (`raw_decode` per value), so a
    HAR's entries are decoded one at a time instead of the whole document at once: a 100 MB HAR became
    some 600 MB of Python objects under json.loads."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0
        self._decode = json.JSONDecoder().raw_decode

    def _skip(self) -> None:
        self.at = _WHITESPACE.match(self.text, self.at).end()  # type: ignore[union-attr]  # always matches

    def opens(self, char: str) -> bool:
        """Does the next value start with char ("{" or "[")? Whitespace before it is skipped."""
        self._skip()
        return self.text.startswith(char, self.at)

    def _take(self, char: str) -> bool:
        self._skip()
        if self.text.startswith(char, self.at):
            self.at += 1
            return True
        return False

    def _expect(self, char: str, what: str) -> None:
        if not self._take(char):
            raise json.JSONDecodeError(f"Expecting {what}", self.text, self.at)

    def value(self) -> Any:
        self._skip()
        value, self.at = self._decode(self.text, self.at)
        return value

    def keys(self) -> Iterator[str]:
        """The keys of the object here; the caller reads or walks each key's value before asking for the next."""
        self._expect("{", "'{'")
        if self._take("}"):
            return
        while True:
            self._skip()
            if not self.text.startswith('"', self.at):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", self.text, self.at)
            key = self.value()
            self._expect(":", "':' delimiter")
            yield key
            if self._take("}"):
                return
            self._expect(",", "',' delimiter")

    def items(self) -> Iterator[Any]:
        """The values of the array here, decoded one by one."""
        self._expect("[", "'['")
        if self._take("]"):
            return
        while True:
            yield self.value()
            if self._take("]"):
                return
            self._expect(",", "',' delimiter")

    def end(self) -> None:
        self._skip()
        if self.at != len(self.text):
            raise json.JSONDecodeError("Extra data", self.text, self.at)


def _walk(scan: _Scanner, pages: dict[str, str]) -> Iterator[Any]:
    """log.entries one by one, the whole document checked as json.loads would; `pages` gets log.pages' URLs
    first. Exporters write pages before entries; where a HAR does not, its entries are decoded whole."""
    found, held = False, None
    if scan.opens("{"):
        for key in scan.keys():
            if key != "log" or not scan.opens("{"):
                scan.value()
                continue
            for name in scan.keys():
                if name == "pages":
                    pages.update(_page_urls(scan.value()))
                elif name == "entries" and scan.opens("["):
                    found = True
                    if not pages and scan.text.find('"pages"', scan.at) >= 0:  # they may come after the entries
                        held = scan.value()
                    else:
                        yield from scan.items()
                else:
                    scan.value()
    else:
        scan.value()
    scan.end()
    if not found:
        raise RecordingError("log.entries: missing or not a list: not a HAR file")
    yield from held or ()


def _located(path: str, entries: Iterator[Any]) -> Iterator[Any]:
    """The entries, with a JSON error or a missing entries list as a RecordingError that names the file."""
    try:
        yield from entries
    except json.JSONDecodeError as e:
        raise RecordingError(f"{path}:{e.lineno}:{e.colno}: not a HAR file: invalid JSON: {e.msg}") from None
    except (RecursionError, ValueError) as e:
        raise RecordingError(f"{path}: not a HAR file: {_short(e)}") from None
    except RecordingError as e:
        raise RecordingError(f"{path}: {e}") from None


def _page_urls(pages: Any) -> dict[str, str]:
    urls = {}
    for page in pages if isinstance(pages, list) else ():
        if isinstance(page, dict) and isinstance(page.get("id"), str):
            # Chromium's DevTools title pages with their URL; Playwright keeps it beside.
            for key in ("_url", "title"):
                if isinstance(page.get(key), str) and _origin_of(page[key]):
                    urls[page["id"]] = page[key]
                    break
    return urls


def _from_har(path: str, har_log: _HarEntries, recording: Recording) -> Iterator[_Seen]:
    entries, pages = har_log
    for n, entry in enumerate(entries, 1):
        recording.seen += 1
        where = f"{path}#{n}"
        try:
            seen = _seen_entry(where, entry, pages)
        except Exception as e:  # mitmproxy's reader raises whatever a malformed entry makes it raise
            _broken(recording, path, where, e)
            continue
        recording._saw(seen.started)
        yield seen


def _seen_entry(where: str, entry: Any, pages: dict[str, str]) -> _Seen:
    flow = har.request_to_flow(_without_bodies(entry))
    request, response = flow.request, flow.response
    assert response is not None
    status: int | None = response.status_code
    if not isinstance(status, int) or status <= 0:  # 0 (Chromium, Firefox) or -1 (Playwright): it failed
        status = None
    response_headers = _pairs(response.headers.fields) if status is not None else ()
    error = entry.get("response", {}).get("_failureText") or entry.get("_error") or ""
    if status is None and not error:
        error = "no response recorded"
    page = pages.get(entry.get("pageref", "")) if isinstance(entry.get("pageref"), str) else None
    started = request.timestamp_start
    return _Seen(where, started, request.method, _checked(request.url), _pairs(request.headers.fields), status,
                 response_headers, response_headers if status is not None else None, str(error), page)


def _without_bodies(entry: Any) -> Any:
    """The entry as mitmproxy's reader takes it, without the bodies no exchange needs (the reader would encode
    them into the flow it builds)."""
    request, response = entry["request"], entry["response"]
    return {**entry, "request": {k: v for k, v in request.items() if k != "postData"},
            "response": {**response, "content": {}}}


# -- from seen entries to exchanges --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Seen:
    """One recorded request, as either reader gives it."""

    where: str
    started: float | None
    method: str
    url: str
    headers: Headers
    status: int | None
    response_headers: Headers
    upstream: Headers | None
    error: str
    page: str | None  # the URL of the page it belongs to (HAR)


def _pair(seen: Iterable[_Seen], recording: Recording) -> Iterator[Exchange]:
    """Exchanges in order, each preflight attached to the request that follows it; a preflight whose request
    never came (it failed) becomes an exchange of its own, not sent."""
    pending: dict[tuple[str, str, str], Preflight] = {}
    pending_at: dict[tuple[str, str, str], _Seen] = {}
    for item in seen:
        fields = {k.lower(): v for k, v in item.headers}
        if (site := fields.get("sec-fetch-site")) == "same-origin":
            recording.skipped[SAME_ORIGIN] += 1
            continue
        if fields.get("sec-fetch-mode", "cors") != "cors":
            recording.skipped[NO_CORS] += 1
            continue
        origin, origin_from = _page_origin(fields, item.page)
        if origin is None:
            recording.skipped[NO_ORIGIN] += 1
            continue
        if site is None and origin == _origin_of(item.url):
            recording.skipped[SAME_ORIGIN] += 1
            continue
        requested = fields.get("access-control-request-method")
        if item.method.upper() == "OPTIONS" and requested is not None:
            key = (origin, item.url, requested)
            if key in pending:  # the one before never got its request: it failed
                yield _preflight_only(pending_at.pop(key), pending.pop(key), origin, origin_from)
            pending[key] = Preflight(
                item.where, requested,
                tuple(n.lower() for n in split_list(fields.get("access-control-request-headers"))),
                item.status, item.response_headers, item.upstream,
            )
            pending_at[key] = item
            continue
        key = (origin, item.url, item.method)
        preflight = pending.pop(key, None)
        pending_at.pop(key, None)
        yield Exchange(item.where, item.started, origin, origin_from, item.method, item.url, item.headers,
                       item.status, item.response_headers, item.upstream, preflight, True, item.error)
    for key, preflight in pending.items():
        yield _preflight_only(pending_at[key], preflight, key[0], "Origin")


def _preflight_only(item: _Seen, preflight: Preflight, origin: str, origin_from: str) -> Exchange:
    return Exchange(item.where, item.started, origin, origin_from, preflight.request_method, item.url, (),
                    None, (), None, preflight, False, item.error)


def _page_origin(fields: dict[str, str], page: str | None) -> tuple[str | None, str]:
    if (origin := fields.get("origin")) is not None:
        return origin, "Origin"
    if (referer := _origin_of(fields.get("referer", ""))) is not None:
        return referer, "Referer"
    if page is not None and (origin := _origin_of(page)) is not None:
        return origin, "page"
    return None, ""


def _origin_of(url: str) -> str | None:
    """The serialised origin of an http(s) URL, default port dropped; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _pairs(fields: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Raw header fields as text, one byte per character for anything not UTF-8 (as the judge reads them)."""
    return tuple((_text(k), _text(v)) for k, v in fields)


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _broken(recording: Recording, path: str, where: str, error: BaseException) -> None:
    recording.skipped[BROKEN] += 1
    if sum(b.startswith(f"{path}#") for b in recording.broken) < _EXAMPLES:
        recording.broken.append(f"{where}: {_short(error) or type(error).__name__}")


def _short(error: BaseException) -> str:
    """An exception's text, one line and short: it may quote a whole hostile value."""
    text = " ".join(str(error).split())
    if isinstance(error, KeyError):
        text = f"missing field {text}"
    return text if len(text) <= 160 else text[:157] + "..."
