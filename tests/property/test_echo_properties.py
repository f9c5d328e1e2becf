"""Echo rules (issue 7): what the gateway reflects is the request's own value, and only when the policy admits it.

The allow-list's plain meaning comes from origin_model (not from addon/core/origins.py),
and the response fields are the ones gateway.py would send. Example counts are fixed
and derandomized (common.fixed).
"""

from __future__ import annotations

from hypothesis import event, given, note
from hypothesis import strategies as st

from addon.core.cors import Decision
from tests.property.common import fixed
from tests.property import gateway_model as gm

CREDENTIALED_EXAMPLES = 600
PREFLIGHT_ECHO_EXAMPLES = 300
UNCREDENTIALED_EXAMPLES = 300


def _by_plugin(decision: Decision) -> bool:
    """Did an API with the CORS plug-in decide (not APIG Method 1, the switch-only API, a CORS-off API or no API)?"""
    return decision.api is not None and decision.api.name in gm.PLUGIN_APIS


@fixed(CREDENTIALED_EXAMPLES)
@given(st.data())
def test_with_credentials_only_admitted_origins_are_echoed(data: st.DataObject) -> None:
    """Any request, credentials on: Access-Control-Allow-Origin is the request's Origin, admitted by the policy."""
    setup = data.draw(gm.setups(credentials=True))
    facts, cand = data.draw(gm.any_requests(setup, with_origin=True))
    backend = [(k, v) for k, v in data.draw(gm.backend_headers) if not k.lower().startswith("access-control-")]
    note(f"allow={setup.allow.entries} regex={setup.allow.regexes} null={setup.allow.allow_null} origin={cand}")
    decision = setup.engine.decide(facts)
    _, headers = gm.final_headers(setup, decision, backend)
    acao = gm.field(headers, "Access-Control-Allow-Origin")
    if cand is None or not _by_plugin(decision):
        event("not decided by the plug-in")
        assert acao in ([], ["*"]), "only APIG's fixed '*' answers exist without the plug-in"
        assert not gm.field(headers, "Access-Control-Allow-Credentials")
        return
    admitted = setup.allow.admits(cand)
    event(f"origin {'admitted' if admitted else 'refused'}, ACAO {'set' if acao else 'absent'}")
    if acao:
        assert acao == [cand.value], f"echoed {acao} for Origin {cand.value!r}"
        assert admitted, f"{cand.value!r} ({cand.how}) echoed with credentials but the policy does not admit it"
        assert gm.field(headers, "Access-Control-Allow-Credentials") == ["true"]
    else:
        assert not [k for k, _ in headers if k.lower().startswith("access-control-")]


@fixed(PREFLIGHT_ECHO_EXAMPLES)
@given(st.data())
def test_a_refused_preflight_reflects_nothing(data: st.DataObject) -> None:
    """A preflight from an origin the policy does not admit gets no Access-Control-* field at all."""
    setup = data.draw(gm.setups())
    facts, cand = data.draw(gm.preflights(setup))
    decision = setup.engine.decide(facts)
    status, headers = gm.final_headers(setup, decision, [])
    if not _by_plugin(decision):
        return
    admitted = setup.allow.admits(cand)
    event(f"preflight {'admitted' if admitted else 'refused'}: status {status}")
    cors = [(k, v) for k, v in headers if k.lower().startswith("access-control-")]
    if not admitted:
        assert cors == [], f"refused origin {cand.value!r} got {cors}"
    elif status == 200:
        assert gm.field(headers, "Access-Control-Allow-Origin") in ([cand.value], ["*"])


@fixed(UNCREDENTIALED_EXAMPLES)
@given(st.data())
def test_without_credentials_star_is_answered_with_star(data: st.DataObject) -> None:
    """Credentials off: '*' in allow_origin answers '*' (nothing reflected); otherwise the admitted origin itself."""
    setup = data.draw(gm.setups(credentials=False))
    facts, cand = data.draw(gm.any_requests(setup, with_origin=True))
    decision = setup.engine.decide(facts)
    _, headers = gm.final_headers(setup, decision, [])
    acao = gm.field(headers, "Access-Control-Allow-Origin")
    assert not gm.field(headers, "Access-Control-Allow-Credentials")
    if cand is None or not acao or not _by_plugin(decision):
        return
    if "*" in setup.allow.entries:
        assert acao == ["*"]
    else:
        assert acao == [cand.value] and setup.allow.admits(cand)
