#!/usr/bin/env python3
"""Draw the benchmark's throughput-vs-APIs chart; run by scripts/bench in an interpreter that has matplotlib.

Reads the series as JSON on stdin: `apis` (the x values) and per connection count
the req/s of corsgate at each API count plus bare mitmdump's and corsgate's
default-policy req/s as reference lines; writes the PNG named on the command line.
Kept apart from scripts/bench so the benchmark itself needs only the standard library.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def main() -> None:
    data = json.load(sys.stdin)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (conns, s) in enumerate(data["conns"].items()):
        color = colors[i % len(colors)]
        ax.plot(data["apis"], s["apis"], marker="o", color=color, label=f"corsgate, N APIs, {conns} conns")
        if s["bare"] is not None:
            ax.axhline(s["bare"], linestyle="--", linewidth=1, color=color, label=f"bare mitmdump, {conns} conns")
        if s["default"] is not None:
            ax.axhline(s["default"], linestyle=":", linewidth=1, color=color,
                       label=f"corsgate default policy, {conns} conns")
    ax.set_xscale("log")
    ax.set_xticks(data["apis"], [f"{n:,}" for n in data["apis"]])
    ax.set_xlabel("APIs in the policy")
    ax.set_ylabel("req/s, GET with Origin")
    ax.set_ylim(bottom=0)
    ax.set_title(data["title"], fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(sys.argv[1])


if __name__ == "__main__":
    main()
