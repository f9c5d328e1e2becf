"""Policy swapping in-process (mitmproxy.test.taddons): `:set cors_policy` rollback, the commands, the watcher.

mitmdump has no command prompt, so the commands and a console/web `:set` are driven
here; tests/e2e/test_reload_e2e.py swaps files under a real mitmdump.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow

from addon import gateway
from addon.gateway import CorsGateway, file_signature
from addon.core.policy import LoadedPolicy, load_policy

SWAP_LINE = "corsgate policy swapped: "


def policy_text(origin: str, server: str = "api-gateway", extra_apis: int = 0) -> str:
    """A one-plug-in policy that allows one origin; extra_apis changes the API count (and the digest)."""
    apis = "".join(f"  - {{name: extra{i}, method: GET, path: /extra{i}}}\n" for i in range(extra_apis))
    return (
        "version: 1\n"
        f"gateway: {{server: {server}}}\n"
        "plugins:\n"
        "  web:\n"
        "    type: cors\n"
        "    content:\n"
        f'      allow_origin: "{origin}"\n'
        "      allow_methods: GET,PUT\n"
        "apis:\n"
        "  - {name: all, method: ANY, path: /, match_mode: SWA, plugins: [web]}\n" + apis
    )


A = policy_text("http://a.test")
B = policy_text("http://b.test", extra_apis=2)
SCHEMA_ERROR = A.replace("GET,PUT", "GET,PUT\n      max_age: soon")  # line 9, plugins.web.content.max_age


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def configured(tmp_path: Path) -> tuple[taddons.context, CorsGateway, Path]:
    """An addon in a taddons context, its cors_policy set to live.yaml holding policy A."""
    addon = CorsGateway()
    tctx = taddons.context(addon)
    live = write(tmp_path / "live.yaml", A)
    tctx.configure(addon, cors_policy=str(live))
    return tctx, addon, live


def swap_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(SWAP_LINE)]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def watch(addon: CorsGateway, caplog: pytest.LogCaptureFixture) -> None:
    """One turn of the policy watcher, its log captured."""
    with caplog.at_level(logging.INFO):
        asyncio.run(addon._reload_if_changed())


def active_digest(addon: CorsGateway) -> str:
    assert addon.engine is not None
    return addon.engine.loaded.digest


# -- file_signature ------------------------------------------------------------------------------

def test_signature_counts_a_symlink_switch_to_an_older_file(tmp_path: Path) -> None:
    new, old = write(tmp_path / "new.yaml", A), write(tmp_path / "old.yaml", A)
    os.utime(old, ns=(10**18, 10**18))  # older than new.yaml, same size and contents
    live = tmp_path / "live.yaml"
    live.symlink_to(new)
    before = file_signature(str(live))
    (tmp_path / "tmp").symlink_to(old)
    os.replace(tmp_path / "tmp", live)
    after = file_signature(str(live))
    assert before is not None and after is not None
    assert after != before and after[0] < before[0]  # mtime went backwards, and it still counts


def test_signature_counts_an_atomic_rename_of_an_identical_copy(tmp_path: Path) -> None:
    live = write(tmp_path / "live.yaml", A)
    copy = write(tmp_path / "copy.yaml", A)
    stat = live.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime and size: only the inode tells
    before = file_signature(str(live))
    os.replace(copy, live)
    assert file_signature(str(live)) != before


def test_signature_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert file_signature(str(tmp_path / "nope.yaml")) is None


# -- :set cors_policy ------------------------------------------------------------------------------

def test_set_to_another_file_swaps_and_logs_old_and_new(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tctx, addon, live = configured(tmp_path)
    other = write(tmp_path / "other.yaml", B)
    with caplog.at_level(logging.INFO):
        tctx.configure(addon, cors_policy=str(other))
    a, b = load_policy(live).digest, load_policy(other).digest
    assert active_digest(addon) == b
    assert swap_lines(caplog) == [f"{SWAP_LINE}{live} ({a}) -> {other} ({b}), apis=3"]


def test_set_to_an_identical_copy_is_still_a_logged_swap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The watched file changes even though the contents do not, and the user is told which file is live."""
    tctx, addon, live = configured(tmp_path)
    copy = write(tmp_path / "copy.yaml", A)
    with caplog.at_level(logging.INFO):
        tctx.configure(addon, cors_policy=str(copy))
    same = load_policy(live).digest
    assert swap_lines(caplog) == [f"{SWAP_LINE}{live} ({same}) -> {copy} ({same}), apis=1"]


def test_bad_set_is_rolled_back_with_the_error_shown(tmp_path: Path) -> None:
    tctx, addon, live = configured(tmp_path)
    engine = addon.engine
    bad = write(tmp_path / "bad.yaml", SCHEMA_ERROR)
    with pytest.raises(exceptions.OptionsError, match=re.escape(f"{bad}:9: plugins.web.content.max_age: must be")):
        tctx.configure(addon, cors_policy=str(bad))
    assert tctx.options.cors_policy == str(live)  # mitmproxy rolled the option back ...
    assert addon.engine is engine  # ... and the last good policy never left


def test_bad_set_names_the_bad_file_even_when_the_active_file_went_bad_too(tmp_path: Path) -> None:
    """Rollback re-applies the old value; re-reading the (meanwhile broken) old file would hide the real error."""
    tctx, addon, live = configured(tmp_path)
    engine = addon.engine
    write(live, "version: 1\napis: [\n")
    asyncio.run(addon._reload_if_changed())  # the watcher has seen and rejected it
    bad = write(tmp_path / "bad.yaml", SCHEMA_ERROR)
    with pytest.raises(exceptions.OptionsError) as raised:
        tctx.configure(addon, cors_policy=str(bad))
    assert str(bad) in str(raised.value) and str(live) not in str(raised.value)
    assert tctx.options.cors_policy == str(live)
    assert addon.engine is engine


def test_set_of_the_unchanged_active_file_does_not_reread_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, addon, live = configured(tmp_path)
    monkeypatch.setattr(gateway, "load_policy", lambda path: pytest.fail(f"re-read {path}"))
    addon.configure({"cors_policy"})  # what mitmproxy's rollback does with the old value
    assert addon.engine is not None and addon.engine.loaded.source == str(live)


def test_change_while_loading_is_not_missed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature is taken before the file is read: a write landing during the load is seen by the watcher."""
    live = write(tmp_path / "live.yaml", A)

    def load_then_file_changes(path: str) -> LoadedPolicy:
        loaded = load_policy(path)
        write(live, B)
        return loaded

    addon = CorsGateway()
    tctx = taddons.context(addon)
    monkeypatch.setattr(gateway, "load_policy", load_then_file_changes)
    tctx.configure(addon, cors_policy=str(live))
    monkeypatch.setattr(gateway, "load_policy", load_policy)
    first = active_digest(addon)
    asyncio.run(addon._reload_if_changed())
    assert active_digest(addon) == load_policy(live).digest != first  # live holds B now


# -- the watcher ---------------------------------------------------------------------------------

def test_watcher_keeps_last_good_warns_once_and_retries(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, addon, live = configured(tmp_path)
    a = active_digest(addon)
    write(live, SCHEMA_ERROR)
    watch(addon, caplog)
    watch(addon, caplog)  # same broken file: no second warning
    (warning,) = warnings(caplog)
    assert f"keeping the last good one ({a})" in warning
    assert f"{live}:9: plugins.web.content.max_age: must be an integer" in warning
    assert active_digest(addon) == a and not swap_lines(caplog)
    write(live, B)  # changed again: retried, and swapped in
    watch(addon, caplog)
    b = load_policy(live).digest
    assert active_digest(addon) == b != a
    assert swap_lines(caplog) == [f"{SWAP_LINE}{live} ({a}) -> {live} ({b}), apis=3"]


def test_watcher_keeps_last_good_when_the_file_is_deleted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, addon, live = configured(tmp_path)
    engine = addon.engine
    live.unlink()
    watch(addon, caplog)
    watch(addon, caplog)
    assert warnings(caplog) == [f"corsgate: cannot read {live}; keeping the last good policy ({active_digest(addon)})"]
    assert addon.engine is engine
    write(live, B)
    asyncio.run(addon._reload_if_changed())
    assert active_digest(addon) == load_policy(live).digest


def test_watcher_polls_only_while_cors_reload_is_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tctx, addon, live = configured(tmp_path)
    a = active_digest(addon)
    monkeypatch.setattr(gateway, "RELOAD_INTERVAL", 0.01)
    write(live, B)

    async def scenario() -> list[str]:
        watcher = asyncio.create_task(addon._watch())
        seen: list[str] = []
        for reload in ("false", "true"):
            tctx.configure(addon, cors_reload=reload)
            await asyncio.sleep(0.3)
            seen.append(active_digest(addon))
        watcher.cancel()
        return seen

    assert asyncio.run(scenario()) == [a, load_policy(live).digest]


def test_watcher_result_is_dropped_when_set_moves_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A broken old file finishing its load after `:set` re-pointed the policy must not warn or swap back."""
    tctx, addon, live = configured(tmp_path)
    write(live, SCHEMA_ERROR)
    other = write(tmp_path / "other.yaml", B)

    async def scenario() -> None:
        task = asyncio.create_task(addon._reload_if_changed())
        await asyncio.sleep(0)  # the watcher is now waiting for its load thread
        tctx.configure(addon, cors_policy=str(other))
        await task

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    assert addon.engine is not None and addon.engine.loaded.source == str(other)
    assert warnings(caplog) == [] and addon._last_error == ""


# -- commands ------------------------------------------------------------------------------------

def test_reload_command_swaps_rejects_and_status_tells(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tctx, addon, live = configured(tmp_path)
    a = active_digest(addon)
    assert tctx.command(addon.status) == (
        f"corsgate policy={live} digest={a} apis=1 mode=enforce reload=on pending=0"
    )
    write(live, SCHEMA_ERROR)
    with pytest.raises(exceptions.CommandError, match=re.escape(f"{live}:9: plugins.web.content.max_age")):
        tctx.command(addon.reload_policy)
    assert active_digest(addon) == a
    status = tctx.command(addon.status)
    assert status.startswith(f"corsgate policy={live} digest={a} apis=1 ")
    assert "last rejected reload: policy not swapped" in status and f"{live}:9: plugins.web.content.max_age" in status
    assert len(warnings(caplog)) == 1
    caplog.clear()
    watch(addon, caplog)  # the watcher does not warn again about the same file
    assert warnings(caplog) == []
    write(live, B)
    with caplog.at_level(logging.INFO):
        tctx.command(addon.reload_policy)
    b = load_policy(live).digest
    assert swap_lines(caplog) == [f"{SWAP_LINE}{live} ({a}) -> {live} ({b}), apis=3"]
    assert tctx.command(addon.status) == f"corsgate policy={live} digest={b} apis=3 mode=enforce reload=on pending=0"


# -- pinning ---------------------------------------------------------------------------------------

def test_unreachable_upstream_answer_belongs_to_the_policy_the_flow_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        addon = CorsGateway()
        tctx = taddons.context(addon)
        first = write(tmp_path / "a.yaml", policy_text("http://a.test", server="gw-a"))
        tctx.configure(addon, cors_policy=str(first))
        connecting = asyncio.Event()
        refuse = asyncio.Event()

        async def refused_later(*_: object) -> None:
            connecting.set()
            await refuse.wait()
            raise ConnectionRefusedError(111, "Connection refused")

        monkeypatch.setattr(asyncio, "open_connection", refused_later)
        f = tflow.tflow()
        f.request.headers["Origin"] = "http://a.test"
        hook = asyncio.create_task(addon.request(f))
        await connecting.wait()
        tctx.configure(addon, cors_policy=str(write(tmp_path / "b.yaml", policy_text("http://a.test", server="gw-b"))))
        refuse.set()
        await hook
        assert f.response is not None and f.response.status_code == 502
        assert f.response.headers["Access-Control-Allow-Origin"] == "http://a.test"
        assert f.response.headers["Server"] == "gw-a"

    asyncio.run(scenario())


def test_a_large_policy_is_frozen_out_of_full_collections_a_small_one_is_not(tmp_path: Path) -> None:
    """gc.freeze once FREEZE_AT_APIS or more APIs are loaded, by `:set cors_policy` and by cors.reload."""
    import gc

    small, large = tmp_path / "small.yaml", tmp_path / "large.json"
    small.write_text(policy_text("https://a.example.com", extra_apis=3))
    apis = [{"name": f"a{i}", "method": "GET", "path": f"/p{i}"} for i in range(gateway.FREEZE_AT_APIS)]
    large.write_text(json.dumps({"version": 1, "apis": apis}))
    addon = CorsGateway()
    gc.unfreeze()
    try:
        with taddons.context(addon) as tctx:
            tctx.configure(addon, cors_policy=str(small))
            assert gc.get_freeze_count() == 0
            tctx.configure(addon, cors_policy=str(large))
            assert addon.engine is not None and addon.engine.api_count == gateway.FREEZE_AT_APIS
            assert gc.get_freeze_count() > gateway.FREEZE_AT_APIS
            gc.unfreeze()
            tctx.command(addon.reload_policy)
            assert gc.get_freeze_count() > gateway.FREEZE_AT_APIS
    finally:
        gc.unfreeze()


def test_the_startup_heap_is_frozen_once_when_mitmproxy_runs() -> None:
    """`running` freezes what is alive then (full collections skip it); a later `running`, as after a
    script reload, freezes nothing more."""
    import gc

    addon = CorsGateway()

    async def scenario() -> None:
        with taddons.context(addon) as tctx:
            tctx.configure(addon, cors_policy="")
            assert gc.get_freeze_count() == 0
            addon.running()
            frozen = gc.get_freeze_count()
            assert frozen > 10_000  # mitmproxy's modules, ours and the policy
            later = [[i] for i in range(1000)]  # alive during the second `running`: it must not freeze them
            addon.running()
            assert gc.get_freeze_count() == frozen
            del later
            addon.done()

    gc.unfreeze()
    gateway.freeze_startup_heap.cache_clear()
    try:
        asyncio.run(scenario())
    finally:
        gc.unfreeze()
