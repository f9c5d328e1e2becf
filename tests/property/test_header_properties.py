"""Header handling under generated input (issue 7): an answer or a refusal, never an exception, never a bad field.

Requests carry generated Access-Control-Request-Method/-Headers values (empty items,
duplicates, whitespace, mixed case, thousands of names, 64 KiB values, CR/LF/NUL,
non-ASCII) against generated policies; the response fields are the ones gateway.py
would put on the wire. Example counts are fixed and derandomized (common.fixed).
"""

from __future__ import annotations

from hypothesis import given, note
from hypothesis import strategies as st

from addon.core.cors import APIG_PREFLIGHT_HEADERS, CorsPlan, CorsRule, response_edit
from addon.core.fields import is_token, lower_set, split_list
from addon.core.policy import CorsContent
from tests.property.common import TOKEN_RE, bad_fields, fixed
from tests.property.gateway_model import (
    Setup,
    any_requests,
    backend_headers,
    field,
    final_headers,
    preflights,
    setups,
)

PREFLIGHT_EXAMPLES = 500
ANY_REQUEST_EXAMPLES = 400
FIELD_LIST_EXAMPLES = 300
EXPOSE_EXAMPLES = 300

APIG_VALUES = dict(APIG_PREFLIGHT_HEADERS)
REFUSAL_STATUSES = {401, 403, 404}


def _configured(setup: Setup, key: str) -> str:
    return ",".join(setup.content[key])


@fixed(PREFLIGHT_EXAMPLES)
@given(st.data())
def test_a_preflight_gets_an_answer_or_a_refusal(data: st.DataObject) -> None:
    setup = data.draw(setups())
    facts, cand = data.draw(preflights(setup))
    note(f"content={setup.content} facts.method={facts.request_method!r:.80} path={facts.path}")
    decision = setup.engine.decide(facts)
    status, headers = final_headers(setup, decision, [("Content-Type", "text/plain")])
    assert bad_fields(headers) == []
    acao = field(headers, "Access-Control-Allow-Origin")
    cors_fields = [k for k, _ in headers if k.lower().startswith("access-control-")]
    if status in REFUSAL_STATUSES and status != 401:
        assert cors_fields == [], f"a {status} refusal carries CORS headers: {cors_fields}"
    if not acao:
        return
    assert len(acao) == 1, "never two Access-Control-Allow-Origin fields"
    assert acao[0] in ("*", cand.value)
    methods = field(headers, "Access-Control-Allow-Methods")
    if methods:
        echoed = methods == [facts.request_method]
        assert methods[0] in (_configured(setup, "allow_methods"), APIG_VALUES["Access-Control-Allow-Methods"]) or (
            echoed and "*" in setup.content["allow_methods"] and setup.credentials and is_token(methods[0])
        ), f"Allow-Methods {methods[0]!r:.80} is neither the configured list nor the requested token"
    allowed_headers = field(headers, "Access-Control-Allow-Headers")
    if allowed_headers and allowed_headers[0] not in (
        _configured(setup, "allow_headers"), APIG_VALUES["Access-Control-Allow-Headers"]
    ):
        items = allowed_headers[0].split(",")
        assert "*" in setup.content["allow_headers"] and setup.credentials
        assert set(items) <= set(facts.request_headers), "only requested names are echoed"
        assert all(TOKEN_RE.fullmatch(i) for i in items)


@fixed(ANY_REQUEST_EXAMPLES)
@given(st.data())
def test_no_request_breaks_the_field_grammar(data: st.DataObject) -> None:
    """Any method, path, host, origin and request-header list: the engine decides, and every field is valid."""
    setup = data.draw(setups())
    facts, _ = data.draw(any_requests(setup))
    backend = data.draw(backend_headers)
    decision = setup.engine.decide(facts)
    assert decision.action in ("pass", "respond", "forward")
    _, headers = final_headers(setup, decision, backend)
    assert bad_fields(headers) == []
    from_backend = len(field(backend, "Access-Control-Allow-Origin"))
    assert len(field(headers, "Access-Control-Allow-Origin")) <= max(1, from_backend), "the gateway added a second one"


@fixed(FIELD_LIST_EXAMPLES)
@given(st.lists(st.text(max_size=40), max_size=5))
def test_split_list_yields_clean_items(values: list[str]) -> None:
    """fields.split_list: no empty items, no commas, no surrounding SP/HTAB, stable under re-joining."""
    items = split_list(values)
    for item in items:
        assert item and "," not in item and item == item.strip(" \t")
    assert split_list(", ".join(items)) == items
    assert lower_set(values) == frozenset(i.lower() for i in items)
    for item in items:
        assert is_token(item) == bool(TOKEN_RE.fullmatch(item))


@fixed(EXPOSE_EXAMPLES)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), st.just("v")), max_size=8))
def test_expose_headers_lists_only_field_names(response_headers: list[tuple[str, str]]) -> None:
    """expose_headers '*' with credentials lists the response's own names: only valid ones may be listed.

    mitmproxy refuses non-token names from upstream unless validate_inbound_headers is off;
    the engine must not rely on that.
    """
    rule = CorsRule("web", CorsContent(allow_origin=("*",), expose_headers=("*",), allow_credentials=True))
    edit = response_edit(CorsPlan("plugin", "https://app.example.com", rule), response_headers)
    assert bad_fields(list(edit.set)) == []
    for name, value in edit.set:
        if name == "Access-Control-Expose-Headers":
            assert all(TOKEN_RE.fullmatch(item) for item in value.split(","))
