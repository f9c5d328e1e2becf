"""The lean launcher: the gateway addon on a mitmproxy Master with only the addons a gateway needs.

mitmdump visits some 35 addons on every event, and most of them exist to record,
display, replay or rewrite flows; on a gateway that chain is about 40 % of the
cost of a request. This master keeps the proxy core, the protections a user relies
on and terminal logging (see `lean_addons` and the README for why each addon is in
or out), dispatches each event only to the addons that handle it, and reads
mitmdump's command line (`--mode`, `--listen-host`, `--listen-port`, `-s`,
`--set name=value`) plus `--policy` and the `--cors-*` options. Besides
gateway.py and the entry point (cors_gateway.py), this is the only module that
imports mitmproxy.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mitmproxy import addonmanager, exceptions, hooks, master, optmanager, options
from mitmproxy.addons import (
    block,
    core,
    disable_h2c,
    errorcheck,
    next_layer,
    proxyauth,
    proxyserver,
    script,
    tlsconfig,
    update_alt_svc,
)

from addon.gateway import CorsGateway

logger = logging.getLogger(__name__)

GATEWAY_SCRIPT = Path(__file__).resolve().with_name("cors_gateway.py")
# mitmproxy's own setup (tools/main.py): records reach the handlers, which filter by level; chatty libraries are capped.
QUIET_LIBRARIES = ("asyncio", "hpack", "quic")
CORS_FLAGS = {  # flag: (the addon's option, metavar)
    "--policy": ("cors_policy", "PATH"),
    "--cors-mode": ("cors_mode", "MODE"),
    "--cors-reload": ("cors_reload", "BOOL"),
    "--cors-force-lazy": ("cors_force_lazy", "BOOL"),
    "--cors-browsers": ("cors_browsers", "LIST"),
}


class HookIndexedAddons(addonmanager.AddonManager):
    """mitmproxy's addon manager, visiting on each event only the chain entries that handle it.

    mitmproxy's own visits every entry on every event, hook or not: a context manager
    and a coroutine each, about 3 µs, and a request is some 8 events. Entries are
    indexed by the hooks they define, anew whenever the chain changes; an entry with
    sub-addons (the script loader, whose scripts come and go) is visited whenever it
    holds any. Order and error handling are mitmproxy's: the loop is its trigger_event.
    """

    def _entries(self, name: str) -> list[tuple[Any, bool]]:
        """(entry, visit only while it holds sub-addons) for each entry that may handle the event."""
        state = self.__dict__  # no __init__ of its own: run_master gives the Master's manager this class
        if state.get("_indexed") != self.chain:
            state["_indexed"], state["_index"] = list(self.chain), {}
        index: dict[str, list[tuple[Any, bool]]] = state["_index"]
        if name not in index:
            hooked = [(a, callable(getattr(a, name, None))) for a in self.chain]
            index[name] = [(a, not own) for a, own in hooked if own or hasattr(a, "addons")]
        return index[name]

    async def trigger_event(self, event: hooks.Hook) -> None:
        for addon, if_holding in self._entries(event.name):
            if if_holding and not addon.addons:
                continue
            try:
                with addonmanager.safecall():
                    await self.invoke_addon(addon, event)
            except exceptions.AddonHalt:
                return


def lean_addons(gateway: object) -> list[object]:
    """The chain, in mitmdump's relative order, so hooks run in the same sequence as under `mitmdump -s`."""
    return [
        core.Core(),  # the core options' checks and the commands every tool expects (set, options.*)
        block.Block(),  # block_global / block_private: a proxy on 0.0.0.0 refuses the internet by default
        disable_h2c.DisableH2C(),  # an h2c upgrade forwarded upstream would break the connection
        proxyauth.ProxyAuth(),  # proxyauth: answers 407 before anything reaches the gateway
        proxyserver.Proxyserver(),  # listeners, connection_strategy, body_size_limit, keep_host_header, timeouts
        gateway,  # where mitmdump runs `-s addon/cors_gateway.py`
        script.ScriptLoader(),  # `-s SCRIPT` after the gateway, as mitmdump runs a second -s
        next_layer.NextLayer(),  # protocol detection: HTTP/1, HTTP/2, TLS, WebSocket, ignore_hosts
        tlsconfig.TlsConfig(),  # certificates from mitmproxy's CA in confdir (~/.mitmproxy), as mitmdump uses
        update_alt_svc.UpdateAltSvc(),  # reverse mode: an upstream Alt-Svc must not lead browsers around the proxy
        errorcheck.ErrorCheck(),  # an error logged during startup exits 1, as under mitmdump
    ]


async def run_master(
    addons: Sequence[object], scripted: object, configure: Callable[[options.Options], None]
) -> None:
    """Run addons on a mitmproxy Master until SIGINT or SIGTERM.

    The one place that uses the Master API, which is less stable than `mitmdump -s`;
    it keeps to what 11.0 and 12.x share: Master(opts, with_termlog=True) inside a
    running loop, its AddonManager (add, invoke_addon_sync, and the trigger_event
    that HookIndexedAddons narrows), run, shutdown, and run() consulting the
    "errorcheck" addon before and after the listeners come up. `scripted` is an
    addon written for `-s`, whose loader configures a new addon once with every
    option (mitmproxy's own addons are configured only on change). An OptionsError
    is logged, so errorcheck ends the startup with mitmdump's message and exit 1
    before anything listens.
    """
    opts = options.Options()
    proxy = master.Master(opts, with_termlog=True)
    proxy.addons.__class__ = HookIndexedAddons  # the Master's own manager, with the event dispatch above
    proxy.addons.add(*addons)
    try:
        proxy.addons.invoke_addon_sync(scripted, hooks.ConfigureHook(set(opts.keys())))
        configure(opts)
    except exceptions.OptionsError as e:
        logger.error("%s", e)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, proxy.shutdown)
        except NotImplementedError:  # Windows' proactor loop, as mitmproxy handles it
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(proxy.shutdown))
    await proxy.run()


def make_parser(opts: options.Options) -> argparse.ArgumentParser:
    """`corsgate serve`: mitmdump's flags for what the lean master has, with help from the options themselves."""
    parser = argparse.ArgumentParser(
        prog="corsgate", description="corsgate, the CORS layer of an API gateway, on a lean mitmproxy master."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway. Unknown --set options are reported and ignored: their addons are not loaded "
        "(use `mitmdump -s addon/cors_gateway.py` for those).",
    )
    opts.make_parser(serve, "mode", short="m")
    opts.make_parser(serve, "listen_host", metavar="HOST")
    opts.make_parser(serve, "listen_port", metavar="PORT", short="p")
    # The addon's options, without argparse's choices: a bad value gets the addon's own message, as under mitmdump.
    described = optmanager.dump_dicts(opts, [name for name, _ in CORS_FLAGS.values()])
    for flag, (name, metavar) in CORS_FLAGS.items():
        serve.add_argument(flag, dest=name, metavar=metavar, help=described[name]["help"])
    opts.make_parser(serve, "scripts", metavar="SCRIPT", short="s")
    serve.add_argument(
        "--set", dest="setoptions", default=[], action="append", metavar="option[=value]",
        help="Set any option, as mitmdump does; repeat for several.",
    )
    verbosity = serve.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", dest="termlog_verbosity", action="store_const", const="error",
                           help="Log errors only (this hides the 'listening at' line too).")
    verbosity.add_argument("-v", "--verbose", dest="termlog_verbosity", action="store_const", const="debug",
                           help="Log everything, down to debug.")
    return parser


def apply_options(opts: options.Options, args: argparse.Namespace) -> None:
    """Options in mitmdump's order: --set (unknown names deferred), confdir's config.yaml, then the flags."""
    opts.set(*args.setoptions, defer=True)
    optmanager.load_paths(
        opts, os.path.join(opts.confdir, "config.yaml"), os.path.join(opts.confdir, "config.yml")
    )
    flags = {key: value for key, value in vars(args).items() if key in opts and value is not None}
    if "scripts" in flags:
        flags["scripts"] = [path for path in flags["scripts"] if not _is_gateway_script(path)]
    opts.update(**flags)
    if opts.deferred:
        logger.warning(
            "corsgate serve: ignoring %s: not options of the lean launcher (their addons are not loaded; "
            "use mitmdump -s addon/cors_gateway.py for them)", ", ".join(sorted(opts.deferred)),
        )


def _is_gateway_script(path: str) -> bool:
    """`-s addon/cors_gateway.py` is built in: skipped rather than run twice, so mitmdump's arguments work unchanged."""
    if Path(path).expanduser().resolve() != GATEWAY_SCRIPT:
        return False
    logger.info("corsgate serve: %s is built in, not loaded a second time", path)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of scripts/corsgate; 0 after SIGINT/SIGTERM, 1 when the options or the policy are bad."""

    async def serve() -> None:
        logging.getLogger().setLevel(logging.DEBUG)
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
        gateway = CorsGateway()
        # The parser is built from the registered options, so it is made once the addons are loaded.
        await run_master(
            lean_addons(gateway), gateway, lambda opts: apply_options(opts, make_parser(opts).parse_args(argv))
        )

    asyncio.run(serve())
    return 0
