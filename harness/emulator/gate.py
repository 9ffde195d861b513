"""The request gate: AWS requests run concurrently; a snapshot or reset runs alone, between requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import StateError


class GateTimeout(StateError):
    """Exclusive access was not granted in time because requests were still running."""


class RequestGate:
    """A shared/exclusive lock around moto's handlers.

    Every AWS request holds the gate *shared* for its whole duration (until its response is closed), so a
    holder of the *exclusive* side never sees a half-applied request. Requests are preferred: a waiting
    snapshot does not stop new requests from starting. That costs a snapshot some delay under constant load
    but can never deadlock when a handler calls back into this same server (Lambda, CloudFormation).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._exclusive = False

    @property
    def active_requests(self) -> int:
        """How many requests currently hold the gate shared."""
        with self._cond:
            return self._active

    def enter_shared(self) -> None:
        """Block while an exclusive holder runs, then count this request in."""
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._active += 1

    def leave_shared(self) -> None:
        """Count a request out; the last one out wakes a waiting exclusive holder."""
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def acquire_exclusive(self, timeout: float) -> None:
        """Wait up to `timeout` seconds until no request runs, then keep new ones out.

        Raises `GateTimeout` (naming how many requests were still running) if that does not happen in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._exclusive or self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    busy = "another snapshot or reset" if self._exclusive else f"{self._active} request(s)"
                    raise GateTimeout(
                        f"AWS emulator: {busy} still running after {timeout:.0f}s; "
                        "the state could not be captured consistently",
                        hint="a long-polling client (SQS ReceiveMessage WaitTimeSeconds) holds requests "
                        "open; the snapshot is retried once they return",
                    )
                self._cond.wait(remaining)
            self._exclusive = True

    def release_exclusive(self) -> None:
        """Let requests in again."""
        with self._cond:
            self._exclusive = False
            self._cond.notify_all()

    @contextmanager
    def exclusive(self, timeout: float) -> Iterator[None]:
        """`acquire_exclusive` / `release_exclusive` as a context manager."""
        self.acquire_exclusive(timeout)
        try:
            yield
        finally:
            self.release_exclusive()

    @contextmanager
    def shared(self) -> Iterator[None]:
        """`enter_shared` / `leave_shared` as a context manager."""
        self.enter_shared()
        try:
            yield
        finally:
            self.leave_shared()
