"""The verdict column in mitmweb (issue 18 part 3): added where mitmweb's default stands, never over a user's
choice, and nothing at all where there is no mitmweb (mitmdump, the lean launcher: no web_columns option)."""

from __future__ import annotations

from mitmproxy.test import taddons
from mitmproxy.tools.web.webaddons import WebAddon

from addon.gateway import VERDICT_COLUMN, show_verdict_column


def test_default_columns_gain_the_comment_column_once() -> None:
    web = WebAddon()
    with taddons.context(web) as tctx:
        default = list(tctx.options.default("web_columns"))
        show_verdict_column()
        assert list(tctx.options.web_columns) == [*default, VERDICT_COLUMN]
        show_verdict_column()  # a script reload runs `running` again: the columns are now "changed", left alone
        assert list(tctx.options.web_columns) == [*default, VERDICT_COLUMN]


def test_user_columns_are_never_overridden() -> None:
    web = WebAddon()
    with taddons.context(web) as tctx:
        tctx.configure(web, web_columns=["method", "path", "status"])
        show_verdict_column()
        assert list(tctx.options.web_columns) == ["method", "path", "status"]


def test_without_mitmweb_there_is_no_option_to_touch() -> None:
    with taddons.context() as tctx:
        show_verdict_column()
        assert "web_columns" not in tctx.options
