"""The tools' room: lint (with its regex analysis), APIG import, and the exporters and learner.

Tools read and write policies through the pure core (`addon/core/`) and never import the
mitmproxy glue, so every command in `scripts/` runs without a proxy.
"""
