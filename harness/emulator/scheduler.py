"""Debounced snapshots: a background thread snapshots shortly after the last change."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class SnapshotScheduler:
    """Calls `snapshot` from a background thread once changes have settled.

    After `changed()`, the snapshot runs when no further change came for `quiet_period` seconds, and at the
    latest `max_delay` seconds after the first unsaved change (so steady traffic still gets saved). If the
    snapshot raises, it is logged and retried after `retry_delay` seconds.
    """

    def __init__(
        self,
        snapshot: Callable[[], object],
        *,
        quiet_period: float,
        max_delay: float,
        retry_delay: float,
    ) -> None:
        self._snapshot = snapshot
        self._quiet_period = quiet_period
        self._max_delay = max_delay
        self._retry_delay = retry_delay
        self._cond = threading.Condition()
        self._first_change: float | None = None
        self._last_change = 0.0
        self._not_before = 0.0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="emulator-snapshots", daemon=True)

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def changed(self) -> None:
        """Note a change; a snapshot follows once changes settle."""
        now = time.monotonic()
        with self._cond:
            if self._first_change is None:
                self._first_change = now
            self._last_change = now
            self._cond.notify()

    def cancel_pending(self) -> None:
        """Forget changes noted so far (after a reset nothing is left to save)."""
        with self._cond:
            self._first_change = None

    def stop(self, timeout: float) -> None:
        """Stop the thread without a last snapshot (the caller takes the final one itself)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _due(self) -> float | None:
        if self._first_change is None:
            return None
        settled = min(self._last_change + self._quiet_period, self._first_change + self._max_delay)
        return max(settled, self._not_before)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    due = self._due()
                    if due is not None and time.monotonic() >= due:
                        break
                    self._cond.wait(None if due is None else due - time.monotonic())
                if self._stopping:
                    return
                # changes arriving while the snapshot runs start a new round
                self._first_change = None
            try:
                self._snapshot()
            except Exception:
                log.exception(
                    "AWS emulator: background snapshot failed; retrying in %.0fs", self._retry_delay
                )
                with self._cond:
                    now = time.monotonic()
                    self._not_before = now + self._retry_delay
                    if self._first_change is None:
                        self._first_change = now
