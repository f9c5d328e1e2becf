"""The pure engine: policy, routing, origins, the CORS decisions, gateway-made responses, raw header fields.

Nothing here imports mitmproxy or the glue (`addon/gateway.py`, `addon/launcher.py`,
`addon/cors_gateway.py`), so the scripts, the exporters and the tests reuse it on plain values.
"""
