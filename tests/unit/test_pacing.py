"""Pacing of background work (addon/core/pacing.py): rests while other threads are busy, full collections held."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from addon.core import pacing


def _work(seconds: float) -> None:
    """CPU work in this thread with a pacing point every few microseconds, as the loader has."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pacing.pace()


@pytest.fixture
def rests(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The rests pace() takes, recorded instead of slept."""
    taken: list[float] = []
    monkeypatch.setattr(pacing.time, "sleep", taken.append)
    return taken


def test_pace_outside_a_paced_job_never_rests(rests: list[float]) -> None:
    _work(0.02)
    assert rests == []


def test_paced_job_runs_at_full_speed_while_nothing_else_runs(rests: list[float]) -> None:
    pacing.paced(lambda: _work(0.02))
    assert rests == []


def test_paced_job_rests_while_another_thread_is_busy(rests: list[float]) -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    busy = threading.Thread(target=spin)
    busy.start()
    try:
        pacing.paced(lambda: _work(0.05))
    finally:
        stop.set()
        busy.join()
    assert rests
    assert all(pacing.REST * pacing.SLICE <= rest < pacing.REST * 0.1 for rest in rests)


def test_full_collections_wait_for_the_job_and_come_back() -> None:
    before = gc.get_threshold()
    seen = pacing.paced(gc.get_threshold)
    assert seen[:2] == before[:2] and seen[2] > 1_000_000
    assert gc.get_threshold() == before
    with pytest.raises(ZeroDivisionError):
        pacing.paced(lambda: 1 / 0)
    assert gc.get_threshold() == before


def test_overlapping_jobs_hold_full_collections_until_the_last_ends() -> None:
    before = gc.get_threshold()
    started, finish = threading.Event(), threading.Event()

    def outer() -> None:
        started.set()
        finish.wait(5)

    thread = threading.Thread(target=pacing.paced, args=(outer,))
    thread.start()
    started.wait(5)
    pacing.paced(lambda: None)  # begins and ends while the other job runs
    held = gc.get_threshold()
    finish.set()
    thread.join()
    assert held[2] > 1_000_000
    assert gc.get_threshold() == before
