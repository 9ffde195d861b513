"""The request gate and the debounced snapshot scheduler, with real threads and short timeouts."""

from __future__ import annotations

import threading
import time

import pytest

from harness.emulator.gate import GateTimeout, RequestGate
from harness.emulator.scheduler import SnapshotScheduler

WAIT = 5.0  # upper bound for anything that should happen promptly


def test_exclusive_waits_for_running_requests() -> None:
    gate = RequestGate()
    gate.enter_shared()
    acquired = threading.Event()

    def snapshot() -> None:
        with gate.exclusive(timeout=WAIT):
            acquired.set()

    thread = threading.Thread(target=snapshot)
    thread.start()
    assert not acquired.wait(0.1)
    gate.leave_shared()
    assert acquired.wait(WAIT)
    thread.join(WAIT)


def test_requests_wait_while_exclusive_is_held() -> None:
    gate = RequestGate()
    entered = threading.Event()
    gate.acquire_exclusive(timeout=WAIT)

    def request() -> None:
        with gate.shared():
            entered.set()

    thread = threading.Thread(target=request)
    thread.start()
    assert not entered.wait(0.1)
    gate.release_exclusive()
    assert entered.wait(WAIT)
    thread.join(WAIT)
    assert gate.active_requests == 0


def test_exclusive_times_out_naming_the_running_requests() -> None:
    gate = RequestGate()
    gate.enter_shared()
    gate.enter_shared()
    with pytest.raises(GateTimeout, match=r"2 request\(s\) still running"):
        gate.acquire_exclusive(timeout=0.05)
    gate.leave_shared()
    gate.leave_shared()
    with gate.exclusive(timeout=WAIT):
        pass


def test_a_request_calling_back_into_the_server_cannot_deadlock_a_waiting_snapshot() -> None:
    gate = RequestGate()
    gate.enter_shared()  # request A runs

    def snapshot() -> None:
        with gate.exclusive(WAIT):
            pass

    waiting = threading.Thread(target=snapshot)
    waiting.start()
    nested = threading.Event()

    def request_b() -> None:  # A's handler calls the server again: B must get in although a snapshot waits
        with gate.shared():
            nested.set()

    threading.Thread(target=request_b).start()
    assert nested.wait(WAIT)
    gate.leave_shared()
    waiting.join(WAIT)
    assert not waiting.is_alive()


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.calls: list[float] = []
        self.failures = failures
        self.called = threading.Event()

    def __call__(self) -> None:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise RuntimeError("disk full")
        self.called.set()


def test_snapshot_follows_a_burst_of_changes_once() -> None:
    recorder = Recorder()
    scheduler = SnapshotScheduler(recorder, quiet_period=0.2, max_delay=WAIT, retry_delay=WAIT)
    scheduler.start()
    started = time.monotonic()
    for _ in range(5):
        scheduler.changed()
    assert recorder.called.wait(WAIT)
    scheduler.stop(WAIT)
    assert len(recorder.calls) == 1
    assert recorder.calls[0] - started >= 0.2


def test_steady_changes_are_saved_after_max_delay() -> None:
    recorder = Recorder()
    scheduler = SnapshotScheduler(recorder, quiet_period=WAIT, max_delay=0.1, retry_delay=WAIT)
    scheduler.start()
    scheduler.changed()
    assert recorder.called.wait(WAIT)
    scheduler.stop(WAIT)


def test_a_failed_snapshot_is_retried() -> None:
    recorder = Recorder(failures=1)
    scheduler = SnapshotScheduler(recorder, quiet_period=0.01, max_delay=0.01, retry_delay=0.05)
    scheduler.start()
    scheduler.changed()
    assert recorder.called.wait(WAIT)
    scheduler.stop(WAIT)
    assert len(recorder.calls) == 2
    assert recorder.calls[1] - recorder.calls[0] >= 0.05


def test_cancelled_changes_are_not_saved() -> None:
    recorder = Recorder()
    scheduler = SnapshotScheduler(recorder, quiet_period=0.2, max_delay=WAIT, retry_delay=WAIT)
    scheduler.start()
    scheduler.changed()
    scheduler.cancel_pending()
    assert not recorder.called.wait(0.4)
    scheduler.stop(WAIT)
    assert recorder.calls == []
