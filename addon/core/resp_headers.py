"""APIG's HTTP response header management plug-in (`set_resp_headers`), compiled once per policy.

The edit runs on a response's raw fields before the CORS edit (gateway.py), so the CORS layer sees the
headers the plug-in added (`expose_headers: '*'` with credentials lists them) and the judge sees the final
response. Actions as APIG documents them (apig_03_0022):

- override: one field with this value, in place of every field of that name (added if there is none);
- append: the existing values and this one joined with ',' into one field (added if there is none);
- delete: every field of that name removed;
- skip: existing fields kept as they are; added if there is none;
- add: another field, whatever is there.

Pure: no mitmproxy import. The policy loader refuses the gateway's own headers (X-Apig-*, X-Request-Id) and
the CORS ones, so the edit never touches what the CORS edit sets.
"""

from __future__ import annotations

from addon.core.policy import RespHeadersContent
from addon.core.rawheaders import Fields, raw


class RespHeaderRule:
    """A set_resp_headers plug-in, its names and values encoded once."""

    __slots__ = ("name", "ops")

    def __init__(self, name: str, content: RespHeadersContent) -> None:
        self.name = name
        # (action, lower-cased name, name as written, value)
        self.ops: tuple[tuple[str, bytes, bytes, bytes], ...] = tuple(
            (h.action, raw(h.name).lower(), raw(h.name), raw(h.value)) for h in content.response_headers
        )

    def apply(self, fields: Fields) -> tuple[tuple[bytes, bytes], ...]:
        """fields with every header of the plug-in handled in turn, in the plug-in's order."""
        out = list(fields)
        for action, low, name, value in self.ops:
            out = _one(out, action, low, name, value)
        return tuple(out)


def _one(fields: list[tuple[bytes, bytes]], action: str, low: bytes, name: bytes, value: bytes) -> list[
        tuple[bytes, bytes]]:
    at = [i for i, (key, _) in enumerate(fields) if key.lower() == low]
    if action == "add" or (not at and action != "delete"):
        return [*fields, (name, value)]
    if action == "skip" or not at:
        return fields
    if action == "delete":
        return [field for i, field in enumerate(fields) if i not in at]
    joined = value if action == "override" else b",".join([*(fields[i][1] for i in at), value])
    first = at[0]
    return [(fields[first][0], joined) if i == first else field
            for i, field in enumerate(fields) if i == first or i not in at]
