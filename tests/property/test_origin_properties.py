"""Origin matching, property by property (issue 7): a match only ever admits what the rule plainly means.

The model in origin_model.py builds each Origin value from parts, so it knows the
answer without parsing; these properties compare addon/core/origins.py against it.
Example counts are fixed and derandomized (see common.fixed), so CI runs the same
examples every time.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from addon.core.origins import OriginMatcher, parse_origin, parse_origin_rule
from tests.property.common import fixed
from tests.property.origin_model import (
    CANON,
    SCHEMES,
    SUFFIX,
    AllowList,
    Candidate,
    allow_lists,
    candidates,
    near_misses,
    serialise,
    spell,
    spoil,
)

MATCH_EXAMPLES = 2000
WILDCARD_EXAMPLES = 1000
ANY_EXAMPLES = 500
REGEX_EXAMPLES = 300
PARSE_EXAMPLES = 500
RULE_TEXT_EXAMPLES = 300


def matcher(allow: AllowList) -> OriginMatcher:
    return OriginMatcher(allow.entries, allow.regexes, allow.allow_null)


def check(allow: AllowList, cand: Candidate) -> None:
    """Soundness always; completeness for ordinary serialised origins."""
    note(f"allow={allow.entries} regex={allow.regexes} null={allow.allow_null} candidate={cand}")
    got = matcher(allow).match(cand.value)
    expected = allow.admits(cand)
    event("admitted" if got is not None else "refused")
    if got is not None:
        assert expected, f"{cand.value!r} ({cand.how}) admitted by {got!r}, but no entry plainly admits it"
    elif expected and not cand.may_refuse:
        pytest.fail(f"{cand.value!r} ({cand.how}) is plainly admitted but was refused")


@fixed(MATCH_EXAMPLES)
@given(st.data())
def test_a_match_is_what_the_rule_plainly_admits(data: st.DataObject) -> None:
    """Exact, wildcard, regex and '*' entries together, against hits, near misses and spoiled hits."""
    allow = data.draw(allow_lists())
    check(allow, data.draw(near_misses(allow)))


@fixed(WILDCARD_EXAMPLES)
@given(
    scheme=st.sampled_from(SCHEMES),
    suffix=SUFFIX,
    label=st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
    trick=st.sampled_from([
        "apex", "sibling", "glued-hyphen", "suffix-then-domain", "suffix-label-then-domain", "fragment",
        "path", "query", "userinfo", "userinfo-suffix", "backslash", "percent-dot", "trailing-dot",
        "space", "other-scheme", "other-port", "nul",
    ]),
)
def test_a_wildcard_never_admits_its_apex_a_sibling_or_a_host_that_contains_it(
    scheme: str, suffix: str, label: str, trick: str
) -> None:
    """https://*.example.com: not example.com, not badexample.com, not example.com.evil.net, ..."""
    rule = f"{scheme}://*.{suffix}"
    m = OriginMatcher((rule,))
    assert m.match(f"{scheme}://{label}.{suffix}") is not None, "control: a real subdomain must match"
    other = "https" if scheme != "https" else "http"
    value = {
        "apex": f"{scheme}://{suffix}",
        "sibling": f"{scheme}://{label}{suffix}",
        "glued-hyphen": f"{scheme}://{label}-{suffix}",
        "suffix-then-domain": f"{scheme}://{suffix}.evil.net",
        "suffix-label-then-domain": f"{scheme}://{label}.{suffix}.evil.net",
        "fragment": f"{scheme}://evil.net#.{suffix}",
        "path": f"{scheme}://evil.net/.{suffix}",
        "query": f"{scheme}://evil.net?.{suffix}",
        "userinfo": f"{scheme}://{label}.{suffix}@evil.net",
        "userinfo-suffix": f"{scheme}://evil.net@{label}.{suffix}",
        "backslash": f"{scheme}://evil.net\\.{suffix}",
        "percent-dot": f"{scheme}://evil%2e{suffix}",
        "trailing-dot": f"{scheme}://{label}.{suffix}.",
        "space": f"{scheme}://evil.net .{suffix}",
        "other-scheme": f"{other}://{label}.{suffix}",
        "other-port": f"{scheme}://{label}.{suffix}:1",
        "nul": f"{scheme}://evil.net\x00.{suffix}",
    }[trick]
    assert m.match(value) is None, f"{rule} admitted {value!r} ({trick})"


@fixed(ANY_EXAMPLES)
@given(st.data())
def test_star_admits_serialised_origins_only(data: st.DataObject) -> None:
    """'*' (which the default policy echoes with credentials) must not admit what no browser sends as an Origin."""
    allow = AllowList(("*",), (), False, ())
    cand = data.draw(candidates())
    got = matcher(allow).match(cand.value)
    if got is not None:
        assert cand.origin is not None, f"'*' admitted {cand.value!r} ({cand.how}), which is not a serialised origin"
    elif not cand.may_refuse:
        assert cand.origin is None, f"'*' refused the serialised origin {cand.value!r}"


@fixed(REGEX_EXAMPLES)
@given(st.data())
def test_regex_entries_match_in_full_and_only_origins(data: st.DataObject) -> None:
    """allow_origin_regex is matched in full, and even '.*' cannot admit a non-origin."""
    allow = data.draw(allow_lists(kinds=("regex",)))
    cand = data.draw(near_misses(allow))
    check(allow, cand)
    got = matcher(allow).match(cand.value)
    if got is not None and got.startswith("allow_origin_regex"):
        assert any(re.fullmatch(p, cand.value) for p in allow.regexes)


@fixed(PARSE_EXAMPLES)
@given(st.data())
def test_parse_origin_is_the_canonical_form_or_nothing(data: st.DataObject) -> None:
    """Clean spellings parse to the canonical origin; spoiled ones never parse."""
    origin = data.draw(CANON)
    clean = spell(data.draw, origin, "clean")
    parsed = parse_origin(clean.value)
    assert parsed is not None and str(parsed) == serialise(origin), (clean.value, parsed)
    spoiled = spoil(data.draw, clean)
    parsed = parse_origin(spoiled.value)
    assert parsed is None, f"{spoiled.value!r} ({spoiled.how}) parsed as {parsed}"


@fixed(RULE_TEXT_EXAMPLES)
@given(st.one_of(
    st.text(max_size=80),
    st.builds(lambda a, b: f"{a}://*.{b}", st.text(max_size=10), st.text(max_size=30)),
    st.builds(lambda a, b: f"https://{a}*{b}", st.text(max_size=10), st.text(max_size=30)),
))
def test_rule_text_parses_or_raises_value_error(text: str) -> None:
    """A policy's allow_origin entry is either understood or refused with a reason (ValueError), nothing else."""
    try:
        rule = parse_origin_rule(text)
    except ValueError as e:
        assert str(e)
        return
    if rule.kind == "wildcard":
        assert rule.origin is not None and OriginMatcher((text,)).match(str(rule.origin)) is None  # never the apex


@pytest.mark.parametrize("value", [
    "https://[:]", "https://[...]", "https://[1]", "https://[]", "https://[abc:::]", "https://[0:0:0:0:0:0:0:1]",
    "https://1.2.3.256", "https://127.0.0.01", "https://127.1", "https://0x7f.0.0.1", "https://2130706433",
    "https://1.2.3.4.5", "https://a.0x1f",
])
def test_hosts_no_browser_serialises_are_not_origins(value: str) -> None:
    """Found by the '*' property: malformed IP literals parsed as origins (so the default policy echoed them)."""
    assert parse_origin(value) is None
    assert OriginMatcher(("*",)).match(value) is None


@pytest.mark.parametrize(("value", "expected"), [
    ("https://[::1]", "https://[::1]"),
    ("https://[::FFFF:102:304]:8443", "https://[::ffff:102:304]:8443"),
    ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
    ("https://0.0.0.0", "https://0.0.0.0"),
    ("https://a.0xzz", "https://a.0xzz"),
])
def test_canonical_ip_hosts_still_parse(value: str, expected: str) -> None:
    assert str(parse_origin(value)) == expected


@pytest.mark.parametrize(("rule", "value"), [
    ("http://*.0.1:5173", "http://10.0.0.1:5173"),
    ("https://*.example.com", "https://[::1]"),
])
def test_a_wildcard_never_admits_an_ip_address(rule: str, value: str) -> None:
    """An IP address is nobody's subdomain (DESIGN §4.4)."""
    try:
        m = OriginMatcher((rule,))
    except ValueError:
        return  # refusing the rule outright is fine too
    assert m.match(value) is None
