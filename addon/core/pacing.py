"""Pacing for CPU-heavy work in a worker thread, such as loading a large policy while the proxy serves (issue 6).

A job in a worker thread competes with the event loop for the GIL, and CPython favours the job:
whenever the loop makes a blocking system call (every socket read and write, every poll) the
waiting job takes the GIL, and the loop gets it back only when the switch interval (5 ms) has
run out. So a busy loop gets a small share of the CPU for as long as the job runs, although,
garbage collection aside, no single step of a policy load holds the GIL for more than ~25 ms
(json.loads): unpaced, a 10,000-API load tripled request latency for its whole duration.

`paced(job)` runs a job so that `pace()`, which the loader calls between small units of work,
sleeps (giving the GIL away) for REST times each SLICE of CPU the job has used, as long as other
threads of the process (the event loop) used the CPU meanwhile; while they are idle, the job runs
at full speed. Full garbage collections wait until the job is done: the job allocates ~150,000
objects that all survive, so it would trigger one full collection after another, each holding the
GIL for 50-170 ms in a proxy's heap; held back, they come down to the one that follows the job.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

SLICE = 0.001  # seconds of CPU the job runs between rests
REST = 4.0  # rest after a slice, as a multiple of it: a busy loop keeps at least REST / (1 + REST) of the CPU
BUSY = 0.05  # other threads used more than this share of the time since the last check: the loop is serving
_NO_FULL_COLLECTION = 1 << 30  # a gc threshold for the oldest generation that is never reached

_local = threading.local()
_gc_lock = threading.Lock()
_gc_holders = 0  # paced jobs running now; full collections wait while there are any
_gc_thresholds = gc.get_threshold()  # as they were before the first of them started


class _Pacer:
    """Clocks of one paced job: its CPU time when its slice began; others' CPU time and the time at the last check."""

    __slots__ = ("cpu", "others", "wall")

    def __init__(self) -> None:
        self.cpu = time.thread_time()
        self.others = time.process_time() - self.cpu
        self.wall = time.perf_counter()


def pace() -> None:
    """A point where a paced job may rest; a no-op outside `paced` (the loader also runs unpaced)."""
    pacer: _Pacer | None = getattr(_local, "pacer", None)
    if pacer is None:
        return
    cpu = time.thread_time()
    used = cpu - pacer.cpu
    if used < SLICE:
        return
    others, wall = time.process_time() - cpu, time.perf_counter()
    # Measured over the last slice and the rest before it: during a slice alone a busy loop hardly runs.
    busy = others - pacer.others > BUSY * (wall - pacer.wall)
    pacer.others, pacer.wall = others, wall
    if busy:
        time.sleep(REST * used)
    pacer.cpu = time.thread_time()


def each(items: Iterable[T]) -> Iterator[T]:
    """The items, with a pacing point before each."""
    for item in items:
        pace()
        yield item


def paced(job: Callable[[], T]) -> T:
    """Run job in this (worker) thread with pacing on, and full garbage collections held until it is done."""
    global _gc_holders, _gc_thresholds
    with _gc_lock:
        if _gc_holders == 0:
            _gc_thresholds = gc.get_threshold()
            gc.set_threshold(*_gc_thresholds[:2], _NO_FULL_COLLECTION)
        _gc_holders += 1
    _local.pacer = _Pacer()
    try:
        return job()
    finally:
        _local.pacer = None
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0:
                gc.set_threshold(*_gc_thresholds)
