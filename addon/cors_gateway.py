"""Entry point for `mitmdump -s addon/cors_gateway.py`.

mitmproxy imports a script under its own module name with only the script's folder
on sys.path, so package imports (`from addon.x import ...`) need the repository
root there; tests import the same modules as `addon.*`, one identity for both.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from addon.gateway import CorsGateway  # noqa: E402

addons = [CorsGateway()]
