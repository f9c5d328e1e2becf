"""The mitmproxy addon: options, hooks, commands and policy reload. No CORS logic of its own.

The engine (cors.py) decides, the judge (verdict.py) diagnoses; this module moves
facts out of flows and decisions back into them. Besides the entry point
(cors_gateway.py) and the lean launcher (launcher.py), it is the only module that
imports mitmproxy.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import gc
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from mitmproxy import command, ctx, exceptions, flow, http
from mitmproxy.net.http import status_codes
from mitmproxy.log import ALERT
from mitmproxy.proxy.mode_specs import ReverseMode

from addon import verdict
from addon.core import rawheaders
from addon.core.cors import PASS, CorsPlan, Decision, Engine, RequestFacts, merge_vary, response_edit
from addon.core.fields import split_list
from addon.core.pacing import paced
from addon.core.policy import DEFAULT_POLICY, PolicyError, Problem, load_policy
from addon.core.resp_headers import RespHeaderRule
from addon.core.responses import BACKEND_TIMEOUT, BACKEND_UNAVAILABLE, GatewayResponse, error_response

logger = logging.getLogger(__name__)

MODES = ("enforce", "report")
RELOAD_INTERVAL = 1.0  # seconds between policy file checks, like mitmproxy's own script reloader
PROBE_TIMEOUT = 3.0  # seconds to connect upstream before answering 504
UP_FOR = 2.0  # seconds a reachable upstream is trusted without probing again
FREEZE_AT_APIS = 1000  # policies this large are kept out of the garbage collector's sight (see `settled`)
REMEMBERED_DECISIONS = 4096  # request shapes whose decision is kept; a page repeats the same few
REMEMBERED_CHARS = 1024  # facts longer than this (in path, origin and requested headers) are decided afresh
CACHED_FIELDS = 64  # an upstream response with more fields than this has its CORS edit worked out afresh
MAX_PENDING = 100_000  # flows remembered between request and response; a bound, not a tuning knob
BLOCKED_MARK = ":no_entry:"
VERDICT_COLUMN = "comment"  # mitmweb's flow-list column for flow.comment, where _diagnose writes the verdict
# Control characters (and the Unicode line/paragraph separators and bidi overrides) in client-sent values:
# written raw, a CR or an obs-fold (kept by mitmproxy as CR LF SP) would forge a log line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
LOGGED_VALUE_MAX = 300


def parse_flag(name: str, value: str) -> bool:
    """Boolean options are strings parsed here: a bad bool in --set would otherwise unload the addon silently."""
    low = value.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def parse_mode(value: str) -> str:
    if value not in MODES:
        raise ValueError(f"cors_mode must be one of {', '.join(MODES)}, not {value!r}")
    return value


def file_signature(path: str) -> tuple[int, ...] | None:
    """Identity + content metadata of a policy file: a rename or symlink switch to an older file changes it too."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev, st.st_ctime_ns)


def settled(engine: Engine) -> Engine:
    """A freshly loaded engine; a large one moved out of the garbage collector's sight (gc.freeze).

    It lives until the next swap, and every full collection would otherwise walk its objects (~14
    per API) with the event loop stopped: 85-170 ms each for 10,000 APIs under load. The price:
    cyclic garbage alive at this moment is never collected (about 3 MB per swap under load).
    """
    if engine.api_count >= FREEZE_AT_APIS:
        gc.freeze()
    return engine


@functools.cache
def freeze_startup_heap() -> None:
    """Move what is alive once mitmproxy runs (its modules and ours, the first policy) out of the collector's sight.

    Those objects live as long as the process, yet every full collection walks them with the event loop
    stopped: about 100,000 objects, 40-50 ms each time, every ~850 flows under load here. Frozen, a full
    collection takes about 12 ms. Once per process (functools.cache), so a reloaded script does not freeze
    the old one's leftovers; the price is that of `settled`, cyclic garbage of the first policy after a swap.
    """
    gc.collect()
    gc.freeze()


def show_verdict_column() -> None:
    """In mitmweb, put the comment column (every cross-origin flow's verdict) in the flow list.

    Only mitmweb has `web_columns`, so mitmdump and the lean launcher are left as they are. A value other than
    mitmweb's default is the user's choice (--set, config.yaml, the options editor) and is never overridden.
    """
    if "web_columns" not in ctx.options or ctx.options.has_changed("web_columns"):
        return
    columns = list(ctx.options.web_columns)
    if VERDICT_COLUMN not in columns:
        ctx.options.update(web_columns=[*columns, VERDICT_COLUMN])
        logger.info("corsgate: mitmweb shows the %r column, where each flow's CORS verdict is; "
                    "set web_columns to choose your own", VERDICT_COLUMN)


def request_facts(request: http.Request, by_host: bool = True, tls: bool = False) -> RequestFacts:
    """The request as the engine sees it, read in one pass; its host only if the policy routes by host;
    tls: it reached the gateway over TLS (the client connection's, not the upstream's)."""
    found = rawheaders.read(request.headers.fields)
    origin = rawheaders.joined(found, rawheaders.ORIGIN)
    return RequestFacts(
        method=request.method,
        host=_host(request, found) if by_host else "",
        path=request.path.split("?", 1)[0],
        origin=origin,
        request_method=rawheaders.joined(found, rawheaders.REQUEST_METHOD) if origin is not None else None,
        request_headers=tuple(split_list(found.get(rawheaders.REQUEST_HEADERS))),
        private_network=(rawheaders.joined(found, rawheaders.PRIVATE_NETWORK) or "").strip().lower() == "true",
        authorization=rawheaders.AUTHORIZATION in found,
        tls=tls,
    )


def _host(request: http.Request, found: dict[bytes, list[str]]) -> str:
    """`request.pretty_host` without its cost on HTTP/1 (where the Host header is the authority)."""
    if request.is_http2 or request.is_http3:
        return request.pretty_host
    authority = rawheaders.joined(found, rawheaders.HOST)
    return rawheaders.authority_host(authority) if authority else request.host


# Gateway-made responses are copies of this one: `http.Response()` type-checks every field when Python
# runs without -O (as mitmdump does), which cost more than all the rest of answering a preflight.
_TEMPLATE = http.Response(b"HTTP/1.1", 200, b"OK", http.Headers(), b"", None, 0.0, 0.0)


def make_response(made: GatewayResponse, decision: Decision, server: str | None) -> http.Response:
    """A mitmproxy response from a gateway-made one, with its CORS and gateway headers; the body as written."""
    fields = made_fields if decision.request_id is None else made_fields.__wrapped__
    response = copy.copy(_TEMPLATE)
    response.data = data = copy.copy(_TEMPLATE.data)
    data.status_code = made.status
    data.reason = status_codes.RESPONSES.get(made.status, "").encode()
    data.headers = http.Headers(fields(made, decision.cors, decision.request_id, server, decision.resp_headers))
    data.content = made.body
    data.timestamp_start = data.timestamp_end = time.time()
    return response


@functools.lru_cache(maxsize=256)
def made_fields(
    made: GatewayResponse, plan: CorsPlan | None, request_id: str | None, server: str | None,
    resp_headers: RespHeaderRule | None = None,
) -> tuple[tuple[bytes, bytes], ...]:
    """The fields of a gateway-made response: remembered, as a page sends the same few preflights again
    and again (called uncached, through __wrapped__, when every response has its own request id).
    A mock's fields get the API's set_resp_headers edit first, then the CORS and gateway fields."""
    fields = [(rawheaders.raw(k), rawheaders.raw(v)) for k, v in made.headers]
    if resp_headers is not None:
        fields = list(resp_headers.apply(fields))
    extra = [("Server", server)] if server else []
    if not any(k.lower() == b"transfer-encoding" for k, _ in fields):
        extra.append(("content-length", str(len(made.body))))
    return edited_fields(fields, plan, request_id, extra) or tuple(fields)


def apply_edit(headers: http.Headers, decision: Decision) -> None:
    """Put a decision's set_resp_headers edit, then its CORS headers and X-Request-Id, on an upstream response
    (DESIGN §4.3): the CORS edit sees the plug-in's headers (expose_headers '*' with credentials lists them)."""
    original = headers.fields
    before = original if decision.resp_headers is None else decision.resp_headers.apply(original)
    fields = edited_fields(before, decision.cors, decision.request_id)
    if fields is not None:
        headers.fields = fields
    elif before is not original:
        headers.fields = before


def edited_fields(
    fields: Sequence[tuple[bytes, bytes]], plan: CorsPlan | None, request_id: str | None,
    extra: Sequence[tuple[str, str]] = (),
) -> tuple[tuple[bytes, bytes], ...] | None:
    """fields with a plan's CORS edit, the X-Request-Id and the extra fields set, in one rebuild;
    None when that changes nothing."""
    names = tuple(name for name, _ in fields)
    vary = rawheaders.values_of(fields, rawheaders.VARY)
    edit = cors_setting if len(names) <= CACHED_FIELDS else cors_setting.__wrapped__
    to_set, strip = edit(plan, names, vary)
    if request_id or extra:
        more = [("X-Request-Id", request_id)] if request_id else []
        to_set = {**to_set, **rawheaders.setting(more + list(extra))}
    if not to_set and not strip:
        return None
    return rawheaders.edited(fields, to_set, strip)


@functools.lru_cache(maxsize=1024)
def cors_setting(
    plan: CorsPlan | None, names: tuple[bytes, ...], vary: tuple[bytes, ...]
) -> tuple[Mapping[bytes, tuple[bytes, bytes]], bool]:
    """The CORS fields a plan sets (Vary merged) on a response with these field names and Vary values,
    and whether it strips the upstream's: remembered, as an upstream sends the same few shapes again and again."""
    edit = response_edit(plan, [(name.decode("latin-1"), "") for name in names])
    pairs = list(edit.set)
    if edit.vary:
        merged = merge_vary([rawheaders.text(value) for value in vary], edit.vary)
        if merged is not None:
            pairs.append(("Vary", merged))
    return MappingProxyType(rawheaders.setting(pairs)), edit.strip_cors


class CorsGateway:
    """corsgate: answers preflights, decorates responses and diagnoses every cross-origin flow."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.mode = "enforce"
        self.reload = True
        self.force_lazy = True
        self.browsers: tuple[str, ...] = verdict.ENGINES
        self._signature: tuple[int, ...] | None = None
        self._pending: dict[str, Decision] = {}
        self._decisions: dict[RequestFacts, Decision] = {}  # of the active engine; emptied by _swap
        self._up_until: dict[tuple[str, int], float] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._last_error = ""

    def load(self, loader) -> None:
        loader.add_option(
            "cors_policy", str, "",
            "Path of the corsgate policy file (YAML or JSON, APIG field names). Empty: the embedded default "
            "(policies/default.yaml), which lets any origin through with credentials.",
        )
        loader.add_option(
            "cors_mode", str, "enforce",
            "enforce: answer preflights and set CORS headers as the policy says. "
            "report: change nothing, only diagnose what the browser will do.",
            choices=MODES,
        )
        loader.add_option("cors_reload", str, "true", "Reload the policy file when it changes (true/false).")
        loader.add_option(
            "cors_force_lazy", str, "true",
            "Set connection_strategy=lazy so an unreachable upstream is answered with a CORS-readable 502 (true/false).",
        )
        loader.add_option(
            "cors_browsers", str, ",".join(verdict.ENGINES),
            "The browser engines whose verdicts count, comma-separated (chromium, firefox, webkit; chrome and "
            "safari name them too): a flow is marked and logged as blocked when any of them blocks it.",
        )

    def configure(self, updated: set[str]) -> None:
        try:
            if "cors_mode" in updated:
                self.mode = parse_mode(ctx.options.cors_mode)
            if "cors_reload" in updated:
                self.reload = parse_flag("cors_reload", ctx.options.cors_reload)
            if "cors_force_lazy" in updated:
                self.force_lazy = parse_flag("cors_force_lazy", ctx.options.cors_force_lazy)
            if "cors_browsers" in updated:
                self.browsers = verdict.parse_engines(ctx.options.cors_browsers)
        except ValueError as e:
            raise exceptions.OptionsError(str(e)) from e
        if "cors_policy" in updated:
            source = str(Path(ctx.options.cors_policy or DEFAULT_POLICY))
            signature = file_signature(source)  # taken before reading, so a change during the load is seen later
            unchanged = self.engine is not None and self.engine.loaded.source == source and signature == self._signature
            if not unchanged:  # unchanged: e.g. mitmproxy re-applying the old value when it rolls a bad :set back
                try:
                    engine = settled(Engine(load_policy(source)))
                except PolicyError as e:
                    raise exceptions.OptionsError(f"Cannot load cors_policy {source}:\n{e}") from e
                self._swap(engine, signature)

    def running(self) -> None:
        if self.force_lazy and "connection_strategy" in ctx.options and ctx.options.connection_strategy != "lazy":
            ctx.options.connection_strategy = "lazy"
            logger.info("corsgate: connection_strategy=lazy, so an unreachable upstream still gets a CORS-readable 502")
        engine = self.engine
        assert engine is not None
        logger.info(
            "corsgate active: policy=%s apis=%d mode=%s digest=%s",
            engine.loaded.source, engine.api_count, self.mode, engine.loaded.digest,
        )
        show_verdict_column()
        freeze_startup_heap()
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def done(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    # -- policy swapping -------------------------------------------------------------------------

    def _swap(self, engine: Engine, signature: tuple[int, ...] | None) -> None:
        """Make engine the active policy: one reference, so a flow sees either the old one or the new one."""
        old = self.engine
        self.engine = engine
        self._decisions = {}
        self._signature = signature
        self._last_error = ""
        if old is not None and (old.loaded.source, old.loaded.digest) != (engine.loaded.source, engine.loaded.digest):
            logger.info(
                "corsgate policy swapped: %s (%s) -> %s (%s), apis=%d",
                old.loaded.source, old.loaded.digest, engine.loaded.source, engine.loaded.digest, engine.api_count,
            )

    async def _watch(self) -> None:
        """Poll the policy file; parse and compile a changed one off the event loop, then swap it in whole."""
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            if self.reload and self.engine is not None:
                await self._reload_if_changed()

    async def _reload_if_changed(self) -> None:
        assert self.engine is not None
        source = self.engine.loaded.source
        signature = file_signature(source)
        if signature == self._signature:
            return
        if signature is None:
            self._reject(f"cannot read {source}; keeping the last good policy ({self.engine.loaded.digest})", None)
            return
        before = (self.engine, self._signature)
        try:
            # Paced, so a busy event loop keeps its share of the CPU while a large policy loads (addon/core/pacing.py).
            engine: Engine | PolicyError = await asyncio.to_thread(paced, lambda: settled(Engine(load_policy(source))))
        except PolicyError as e:
            engine = e
        except Exception as e:  # a loader bug must not end the watcher: later edits must still be seen
            logger.exception("corsgate: could not load %s", source)
            engine = PolicyError(source, [Problem(None, "", f"{type(e).__name__}: {e}")])
        if (self.engine, self._signature) != before:
            return  # :set or cors.reload moved on while this file was loading; their result stands
        if isinstance(engine, PolicyError):
            self._reject(self._not_swapped(engine), signature)
        else:
            self._swap(engine, signature)

    def _not_swapped(self, error: PolicyError) -> str:
        assert self.engine is not None
        return f"policy not swapped, keeping the last good one ({self.engine.loaded.digest}):\n{error}"

    def _reject(self, message: str, signature: tuple[int, ...] | None) -> None:
        """Keep the active policy, warn once for this version of the file (the watcher retries when it changes)."""
        self._signature = signature
        self._last_error = message
        logger.warning("corsgate: %s", message)

    # -- hooks -----------------------------------------------------------------------------------

    async def request(self, f: http.HTTPFlow) -> None:
        engine = self.engine  # the policy this flow starts with, even if a swap lands while it waits
        if f.response or f.error or not f.live or self.mode != "enforce" or engine is None:
            return
        try:
            decision = self._decide(engine, request_facts(f.request, engine.by_host, f.client_conn.tls_established))
        except Exception:  # a malformed request must never break the proxy
            logger.exception("corsgate: could not decide on %s %s", loggable(f.request.method),
                             loggable(f.request.pretty_url))
            return
        if decision.action == "pass":
            if decision is not PASS:  # it says which APIs the request missed (group domains, protocol)
                f.metadata["corsgate.trail"] = list(decision.trail)
            return
        f.metadata["corsgate.trail"] = list(decision.trail)
        if decision.action == "respond":
            assert decision.response is not None
            f.response = make_response(decision.response, decision, engine.policy.gateway.server)
            f.metadata["corsgate.answered"] = True
        else:
            self._remember(f, decision)
            await self._probe(f, decision, engine.policy.gateway.server)

    def responseheaders(self, f: http.HTTPFlow) -> None:
        decision = self._pending.pop(f.id, None)
        if decision is None or f.response is None or f.response.status_code == 101:
            return
        if f.metadata.get("corsgate.answered"):
            return
        apply_edit(f.response.headers, decision)

    def response(self, f: http.HTTPFlow) -> None:
        if f.response is None or f.response.status_code == 101:
            return
        if not f.metadata.get("corsgate.answered"):  # only the upstream's own answer shows it is up
            self._up_until[(f.request.host, f.request.port)] = time.monotonic() + UP_FOR
        self._diagnose(f, f.response.status_code, f.response.headers.fields)

    def error(self, f: http.HTTPFlow) -> None:
        self._pending.pop(f.id, None)
        self._up_until.pop((f.request.host, f.request.port), None)  # probe again next time
        if f.response is None and "origin" in f.request.headers:
            self._diagnose(f, 502, ())  # mitmproxy's own 502 carries no CORS headers

    # -- helpers ---------------------------------------------------------------------------------

    def _decide(self, engine: Engine, facts: RequestFacts) -> Decision:
        """engine.decide, remembered per request shape: a decision is a pure function of the facts
        unless the policy gives every response a new X-Request-Id. `request` passes the active engine
        and decides without awaiting, so no swap (which empties the memo) can come in between."""
        size = len(facts.path) + len(facts.origin or "") + sum(map(len, facts.request_headers))
        if engine.makes_request_ids or size > REMEMBERED_CHARS:
            return engine.decide(facts)
        decision = self._decisions.get(facts)
        if decision is None:
            decision = engine.decide(facts)
            if len(self._decisions) >= REMEMBERED_DECISIONS:
                del self._decisions[next(iter(self._decisions))]
            self._decisions[facts] = decision
        return decision

    def _remember(self, f: http.HTTPFlow, decision: Decision) -> None:
        """Pin the decision (and so the policy) a flow started with until its response arrives."""
        if len(self._pending) >= MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))
        self._pending[f.id] = decision

    async def _probe(self, f: http.HTTPFlow, decision: Decision, server: str | None) -> None:
        """Answer a CORS-readable 502/504 when the upstream cannot be reached (mitmproxy's 502 bypasses hooks)."""
        target = (f.request.host, f.request.port)
        if self._up_until.get(target, 0.0) > time.monotonic() or not f.live:
            return
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(*target), PROBE_TIMEOUT)
        except asyncio.TimeoutError:
            error, detail = BACKEND_TIMEOUT, f"no connection to {target[0]}:{target[1]} within {PROBE_TIMEOUT:g} s"
        except OSError as e:
            error, detail = BACKEND_UNAVAILABLE, f"{target[0]}:{target[1]}: {e.strerror or e}"
        else:
            writer.close()
            self._up_until[target] = time.monotonic() + UP_FOR
            return
        if f.response is not None or not f.live:
            return
        self._pending.pop(f.id, None)
        made = error_response(error, decision.request_id or "", detail)
        # A gateway-made error: the API's set_resp_headers plug-in edits only upstream and mock answers (README).
        f.response = make_response(made, dataclasses.replace(decision, resp_headers=None), server)
        f.metadata["corsgate.answered"] = True
        f.metadata["corsgate.trail"] = list(decision.trail) + [f"upstream unreachable: {detail}"]

    def _diagnose(self, f: http.HTTPFlow, status: int, fields: Sequence[tuple[bytes, bytes]]) -> None:
        try:
            diagnosis = verdict.diagnose_raw(f.request.method, f.request.headers.fields, status, fields)
        except Exception:  # the judge must never take the proxy down either
            logger.exception("corsgate: could not diagnose %s %s", loggable(f.request.method),
                             loggable(f.request.pretty_url))
            return
        if diagnosis.kind in ("same-origin", "no-origin", "no-cors"):
            return
        browsers = self.browsers
        summary = diagnosis.summary(browsers)
        trail = f.metadata.get("corsgate.trail")
        decided_by = f" [{trail[0]}]" if trail else ""
        f.metadata["corsgate.verdict"] = summary
        note = flow_note(f, diagnosis, browsers)
        blocked = diagnosis.blocked_in(browsers)
        if blocked:  # each engine's own words, built only for the flows that are marked and logged
            summary = diagnosis.told(browsers, page_url(f), status)
        f.comment = f"CORS {diagnosis.kind}: {summary}{decided_by}" + (f" (note: {note})" if note else "")
        if blocked:
            f.marked = BLOCKED_MARK
            logger.warning(
                "CORS blocked: %s %s from origin %s: %s%s",
                loggable(f.request.method), loggable(f.request.pretty_url),
                loggable(f.request.headers.get("origin", "")), loggable(summary, 4000), loggable(decided_by),
            )

    # -- commands --------------------------------------------------------------------------------

    @command.command("cors.reload")
    def reload_policy(self) -> None:
        """Re-read the policy file now; the last good policy stays active if it is broken."""
        if self.engine is None:
            raise exceptions.CommandError("corsgate has no policy loaded")
        source = self.engine.loaded.source
        signature = file_signature(source)
        try:
            engine = settled(Engine(load_policy(source)))
        except PolicyError as e:
            self._reject(self._not_swapped(e), signature)
            raise exceptions.CommandError(str(e)) from e
        self._swap(engine, signature)
        logging.log(ALERT, "corsgate policy %s (%s) active, apis=%d", source, engine.loaded.digest, engine.api_count)

    @command.command("cors.status")
    def status(self) -> str:
        """The active policy, its content hash, the API count and the mode."""
        if self.engine is None:
            return "corsgate: no policy loaded"
        loaded = self.engine.loaded
        text = (
            f"corsgate policy={loaded.source} digest={loaded.digest} apis={self.engine.api_count} "
            f"mode={self.mode} reload={'on' if self.reload else 'off'} pending={len(self._pending)}"
        )
        if self._last_error:
            text += f"\nlast rejected reload: {self._last_error}"
        logging.log(ALERT, text)
        return text

    @command.command("cors.explain")
    def explain(self, flows: Sequence[flow.Flow]) -> str:
        """The verdict of each chosen browser engine, its notes, and the decision trail of each flow."""
        lines = []
        for f in flows:
            if not isinstance(f, http.HTTPFlow):
                continue
            lines.append(f"{f.request.method} {f.request.pretty_url}")
            lines.append(f"  verdict: {f.metadata.get('corsgate.verdict', 'not cross-origin, or not diagnosed')}")
            lines += [f"  {line}" for line in self._engine_lines(f)]
            for step in f.metadata.get("corsgate.trail", ["no API matched, or report mode: nothing was changed"]):
                lines.append(f"  - {step}")
        text = "\n".join(lines)
        logging.log(ALERT, text)
        return text

    def _engine_lines(self, f: http.HTTPFlow) -> list[str]:
        """Each chosen engine's verdict on the flow and its notes, judged again from the flow (rarely asked)."""
        if f.response is not None:
            diagnosis = verdict.diagnose(f.request.method, f.request.headers.items(True), f.response.status_code,
                                         f.response.headers.items(True))
        elif f.error is not None:
            diagnosis = verdict.diagnose(f.request.method, f.request.headers.items(True), 502, ())
        else:
            return []
        if diagnosis.kind in ("same-origin", "no-origin", "no-cors"):
            return []
        lines = []
        for engine in self.browsers:
            judged = diagnosis.verdict_in(engine)
            key = verdict.message_key(judged, engine)
            lines.append(f"{verdict.NAMES[engine]}: {diagnosis.summary((engine,))}" + (f" [{key}]" if key else ""))
            lines += [f"  note: {note}" for note in judged.notes]
        note = flow_note(f, diagnosis, self.browsers)
        return lines + ([f"note: {note}"] if note else [])


def page_url(f: http.HTTPFlow) -> str:
    """The URL the page fetched, as Firefox quotes it: in reverse mode the proxy's own address (mitmproxy
    has put the upstream's host and port in the request), in regular mode the request's URL."""
    if not isinstance(f.client_conn.proxy_mode, ReverseMode) or not f.client_conn.sockname:
        return f.request.pretty_url
    host, port = f.client_conn.sockname[:2]
    scheme = "https" if f.client_conn.tls_established else "http"
    host = f"[{host}]" if ":" in host else host
    default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    return f"{scheme}://{host}{'' if default else f':{port}'}{f.request.path}"


def flow_note(f: http.HTTPFlow, diagnosis: verdict.Diagnosis, browsers: Sequence[str]) -> str:
    """What no exchange's verdict shows: Safari refuses an HTTPS page's request to the address this flow
    reached over http:// (loopback or private) before CORS, so only other browsers' flows get here."""
    if "webkit" not in browsers or not diagnosis.origin.startswith("https://") or f.client_conn.tls_established:
        return ""
    reverse = isinstance(f.client_conn.proxy_mode, ReverseMode)
    host = f.client_conn.sockname[0] if reverse and f.client_conn.sockname else f.request.host
    return verdict.MIXED_CONTENT_NOTE if verdict.blocked_as_mixed_content(diagnosis.origin, "http", host) else ""


def loggable(text: str, limit: int = LOGGED_VALUE_MAX) -> str:
    """Client-influenced text for one log line: control characters escaped, length bounded."""
    shown = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text[:limit])
    return shown + "..." if len(text) > limit else shown
