"""Pacing for CPU-heavy work in a worker thread, such as loading a large policy while the proxy serves (issue 6).

A job in a worker thread competes with the event loop for the GIL, and CPython favours the job:
whenever the loop makes a blocking system call (every socket read and write, every poll) the
waiting job takes the GIL, and the loop gets it back only when the switch interval (5 ms) has
run out. So a busy loop gets a small share of the CPU for as long as the job runs: a 0.8 s
policy load stalled requests for several hundred milliseconds, although no single step held the
GIL for more than a few (measured; see DESIGN.md, policy reload).

`paced(job)` runs a job so that `pace()`, which the loader calls between small units of work,
sleeps (giving the GIL away) for REST times each SLICE of CPU the job has used, as long as other
threads of the process (the event loop) used the CPU meanwhile; while they are idle the job runs
at full speed. Automatic garbage collection waits until the job is done: the job allocates
hundreds of thousands of objects that all survive, so it would trigger several full collections,
each holding the GIL for up to 100 ms; held back, the new objects are collected with the next
ordinary collection.
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
BUSY = 0.05  # other threads used more than this share of the time since the last rest: the loop is serving

_local = threading.local()
_gc_lock = threading.Lock()
_gc_holders = 0  # paced jobs running now; automatic collection is off while there are any
_gc_was_enabled = False


class _Pacer:
    """The CPU clocks at the last rest (or start) of one paced job."""

    __slots__ = ("cpu", "others", "wall")

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
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
    others = time.process_time() - cpu - pacer.others
    if others > BUSY * (time.perf_counter() - pacer.wall):
        time.sleep(REST * used)
    pacer.mark()


def each(items: Iterable[T]) -> Iterator[T]:
    """The items, with a pacing point before each."""
    for item in items:
        pace()
        yield item


def paced(job: Callable[[], T]) -> T:
    """Run job in this (worker) thread with pacing on and automatic garbage collection held until it is done."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    _local.pacer = _Pacer()
    try:
        return job()
    finally:
        _local.pacer = None
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()
