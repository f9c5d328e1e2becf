"""Entry point for `mitmdump -s addon/cors_gateway.py`.

mitmproxy imports a script under its own module name with only the script's folder
on sys.path, so package imports (`from addon.x import ...`) need the repository
root there; tests import the same modules as `addon.*`, one identity for both.
"""

import sys
from pathlib import Path

# addonmanager, layers and server_hooks define hooks: imported, they are all in hooks.all_hooks when it is
# read below (under mitmdump they are loaded already).
from mitmproxy import addonmanager, hooks  # noqa: F401
from mitmproxy.proxy import layers, server_hooks  # noqa: F401

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from addon.gateway import CorsGateway  # noqa: E402

addons = [CorsGateway()]


def _hook_names_bound_to_none() -> dict[str, None]:
    """Every hook name this module lacks, bound to None (skipped: mitmproxy calls only truthy hooks).

    mitmproxy looks each event's hook up on a script's module as well as on its addons: eight
    lookups per request (four events, each followed by `update`). On Python 3.11 a module
    attribute that is missing costs ~2 µs, as the AttributeError is built and formatted before
    getattr's default is returned, against ~0.07 µs for one that is found (3.12: ~0.17 µs).
    `add_log` stays unbound: mitmproxy warns about any addon that has it.
    """
    return {name: None for name in hooks.all_hooks if name != "add_log" and name not in globals()}


globals().update(_hook_names_bound_to_none())
