"""The emulator's state machinery in one object: restore at start, snapshots, reset, health."""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from dataclasses import dataclass
from typing import Any

import moto

from harness.emulator.config import (
    SHUTDOWN_WAIT_SECONDS,
    SNAPSHOT_RETRY_SECONDS,
    SNAPSHOT_WAIT_SECONDS,
    EmulatorConfig,
)
from harness.emulator.gate import GateTimeout, RequestGate
from harness.emulator.mail import CapturedMailStore
from harness.emulator.moto_state import CapturedState, MotoState
from harness.emulator.scheduler import SnapshotScheduler
from harness.emulator.state_file import StateFile, UnreadableStateError
from harness.errors import StateError

log = logging.getLogger(__name__)

STATE_FORMAT = 1  # bump when the payload layout changes; older files are then moved aside, not misread
_MAIL_EXTRA = "ses_mail"


@dataclass(frozen=True)
class SnapshotResult:
    """One snapshot written to disk."""

    bytes: int
    ms: float  # total: waiting for running requests, pickling, writing
    capture_ms: float  # pickling only: the time new requests were held back
    backends: tuple[str, ...]
    skipped: dict[str, str]
    at: float  # unix time

    def as_json(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes,
            "ms": round(self.ms, 2),
            "capture_ms": round(self.capture_ms, 2),
            "backends": list(self.backends),
            "skipped": self.skipped,
            "at": self.at,
        }


@dataclass(frozen=True)
class _Capture:
    mutations: int  # the mutation count the capture reflects
    state: CapturedState
    ms: float


@dataclass
class RestoreReport:
    """What happened to the state file at start."""

    restored: bool = False
    backends: tuple[str, ...] = ()
    ms: float = 0.0
    moved_aside: str | None = None
    problem: str | None = None
    from_previous: str | None = None  # the `.prev` file restored instead of an unreadable state file


class EmulatorRuntime:
    """Owns the request gate, the captured mail and the state file of one emulator process.

    The WSGI middlewares call `note_mutation()` for every changing request, then `persist()` before they
    answer it (synchronous snapshots, group commit); with `sync_snapshots` off a background thread snapshots
    instead (see `SnapshotScheduler`). `close()` takes the final snapshot and keeps requests out for good.
    """

    def __init__(self, config: EmulatorConfig, moto_state: MotoState | None = None) -> None:
        self.config = config
        self.gate = RequestGate()
        self.mail = CapturedMailStore()
        self.restore_report = RestoreReport()
        self.started_at = time.time()
        self._moto = moto_state or MotoState(config.account_id)
        self._file = StateFile(config.state_file) if config.state_file else None
        self._persistence_off: str | None = None if self._file else "no --state-file given"
        self._counter_lock = threading.Lock()
        self._snapshot_lock = threading.Lock()
        self._mutations = 0
        self._saved_mutations = 0
        self._snapshots = 0
        self._last_snapshot: SnapshotResult | None = None
        self._last_error: str | None = None
        self._scheduler = SnapshotScheduler(
            self._background_snapshot,
            quiet_period=config.snapshot_quiet_seconds,
            max_delay=config.snapshot_max_delay_seconds,
            retry_delay=SNAPSHOT_RETRY_SECONDS,
        )

    # -- lifecycle -----------------------------------------------------------------------------------

    def restore(self) -> RestoreReport:
        """Load the state file if there is one. Never raises: a bad file is moved aside, with a warning."""
        if self._file is None:
            return self.restore_report
        started = time.perf_counter()
        try:
            restored = self._load(self._file)
            if restored is None:
                return self.restore_report
        except Exception as exc:  # whatever is wrong with the file: the previous snapshot, or start empty
            previous = self._file.previous
            self._set_aside(exc)
            if not previous.exists():
                return self.restore_report
            try:
                restored = self._load(previous)
                assert restored is not None
            except Exception as prev_exc:
                self._moto.reset()
                self.mail.clear()
                log.error(
                    "AWS emulator: the previous snapshot %s is unreadable too (%s)", previous.path, prev_exc
                )
                return self.restore_report
            self.restore_report.restored = True
            self.restore_report.backends = restored.backends
            self.restore_report.from_previous = str(previous.path)
            self.restore_report.ms = (time.perf_counter() - started) * 1000
            log.warning(
                "AWS emulator: restored the previous snapshot %s instead (changes after it are lost)",
                previous.path,
            )
            self._mark_unsaved()  # the next snapshot rewrites the state file from what was restored
            return self.restore_report
        self.restore_report = RestoreReport(
            restored=True, backends=restored.backends, ms=(time.perf_counter() - started) * 1000
        )
        log.info(
            "AWS emulator: restored %d backends from %s in %.0f ms",
            len(restored.backends),
            self._file.path,
            self.restore_report.ms,
        )
        return self.restore_report

    def _load(self, file: StateFile) -> Any:
        contents = file.read()
        if contents is None:
            return None
        self._check_header(contents.header)
        restored = self._moto.restore(contents.body)
        self.mail.load(restored.extras.get(_MAIL_EXTRA) or {})
        return restored

    def _mark_unsaved(self) -> None:
        with self._counter_lock:
            self._mutations += 1

    def start_background(self) -> None:
        """Start the snapshot thread (after `restore`, before serving)."""
        self._scheduler.start()

    def close(self) -> SnapshotResult | None:
        """Final snapshot on shutdown. Requests are kept out afterwards: the process is about to exit."""
        self._scheduler.stop(SHUTDOWN_WAIT_SECONDS)
        with self._snapshot_lock:
            try:
                self.gate.acquire_exclusive(SHUTDOWN_WAIT_SECONDS)  # deliberately never released
            except GateTimeout as exc:
                log.error("%s; keeping the previous snapshot", exc)
                return None
            if not self._persistence_enabled() or not self.dirty:
                return None
            try:
                return self._write_snapshot(time.perf_counter(), self._capture())
            except StateError as exc:
                log.error("AWS emulator: final snapshot failed: %s", exc)
                return None

    # -- called by the middlewares --------------------------------------------------------------------

    def note_mutation(self) -> int:
        """Record that a request may have changed state (call it before leaving the gate); returns the
        change's number, for `persist`."""
        with self._counter_lock:
            self._mutations += 1
            number = self._mutations
        if self._persistence_enabled() and not self.config.sync_snapshots:
            self._scheduler.changed()
        return number

    def persist(self, number: int, wait: float = SNAPSHOT_WAIT_SECONDS) -> bool:
        """Return once a snapshot holding change `number` is on disk (call it after leaving the gate): True,
        or False when that snapshot failed — then the change must not be acknowledged.

        Group commit: requests that finish while a snapshot is being written wait for it and then find their
        change saved by the next one, so concurrent changes share snapshots. If the snapshot fails (disk
        full, or running requests kept it out for `wait` seconds), the error is logged and reported by
        `/_harness/health`, and the background scheduler retries.
        """
        if not self._persistence_enabled() or not self.config.sync_snapshots:
            return True
        with self._snapshot_lock:
            with self._counter_lock:
                if self._saved_mutations >= number:
                    return True
            started = time.perf_counter()
            try:
                with self.gate.exclusive(wait):
                    captured = self._capture()
                self._write_snapshot(started, captured)
            except StateError as exc:
                self._last_error = str(exc)
                log.error("AWS emulator: snapshot failed, the change is in memory only for now: %s", exc)
                self._scheduler.changed()
                return False
        with self._counter_lock:
            return self._saved_mutations >= number

    @property
    def last_error(self) -> str | None:
        """Why the last snapshot failed (None once one succeeds)."""
        return self._last_error

    @property
    def dirty(self) -> bool:
        """Whether state changed since the last snapshot (or restore, or reset)."""
        with self._counter_lock:
            return self._mutations != self._saved_mutations

    # -- control operations ---------------------------------------------------------------------------

    def snapshot(self, wait: float = SNAPSHOT_WAIT_SECONDS) -> SnapshotResult:
        """Write a snapshot now (waiting up to `wait` seconds for running requests). Raises `StateError`."""
        if not self._persistence_enabled():
            raise StateError(
                f"AWS emulator: persistence is off ({self._persistence_off})",
                hint="start the emulator with --state-file PATH",
            )
        with self._snapshot_lock:
            started = time.perf_counter()
            with self.gate.exclusive(wait):
                captured = self._capture()
            return self._write_snapshot(started, captured)

    def reset(self, wait: float = SNAPSHOT_WAIT_SECONDS) -> dict[str, Any]:
        """Empty every backend (moto's reset) and the captured mail, and delete the state file."""
        with self._snapshot_lock, self.gate.exclusive(wait):
            self._moto.reset()
            self.mail.clear()
            deleted = self._file.delete() if self._file else False
            if self._file:
                self._file.previous.delete()
            if deleted and self._persistence_off and self._file:
                self._persistence_off = None  # the unmovable file is gone, so saving is safe again
            with self._counter_lock:
                self._saved_mutations = self._mutations
            self._scheduler.cancel_pending()
        log.info("AWS emulator: reset all backends%s", " and deleted the state file" if deleted else "")
        return {"status": "ok", "state_file_deleted": deleted}

    def health(self) -> dict[str, Any]:
        """The `/_harness/health` document."""
        last = self._last_snapshot
        return {
            "status": "ok",
            "restored": self.restore_report.restored,
            "state_file": str(self._file.path) if self._file else None,
            "pid": os.getpid(),
            "endpoint": self.config.endpoint,
            "account_id": self.config.account_id,
            "region": self.config.region,
            "moto_version": moto.__version__,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "fidelity": self.config.fidelity.as_json(self.config.endpoint),
            "persistence": {
                "enabled": self._persistence_enabled(),
                "disabled_reason": self._persistence_off,
                "pending": self.dirty,
                "snapshots": self._snapshots,
                "last_snapshot": last.as_json() if last else None,
                "last_error": self._last_error,
                "restored_backends": list(self.restore_report.backends),
                "restore_ms": round(self.restore_report.ms, 2),
                "moved_aside": self.restore_report.moved_aside,
                "restore_problem": self.restore_report.problem,
                "restored_from_previous": self.restore_report.from_previous,
                "synchronous": self.config.sync_snapshots,
            },
        }

    # -- internals ------------------------------------------------------------------------------------

    def _persistence_enabled(self) -> bool:
        return self._file is not None and self._persistence_off is None

    def _header(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "moto_version": moto.__version__,
            "python": platform.python_version(),
            "account_id": self.config.account_id,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _check_header(self, header: dict[str, Any]) -> None:
        written = (header.get("format"), header.get("moto_version"))
        if written != (STATE_FORMAT, moto.__version__):
            raise UnreadableStateError(
                f"it was written by state format {written[0]} / moto {written[1]}, "
                f"this emulator uses format {STATE_FORMAT} / moto {moto.__version__}"
            )

    def _capture(self) -> _Capture:
        """Pickle the state; the caller holds the gate exclusively."""
        started = time.perf_counter()
        with self._counter_lock:
            mutations = self._mutations
        state = self._moto.capture({_MAIL_EXTRA: self.mail.export()})
        return _Capture(mutations, state, (time.perf_counter() - started) * 1000)

    def _write_snapshot(self, started: float, capture: _Capture) -> SnapshotResult:
        assert self._file is not None
        try:
            size = self._file.write(self._header(), capture.state.data)
        except StateError as exc:
            self._last_error = str(exc)
            raise
        with self._counter_lock:
            self._saved_mutations = capture.mutations
        result = SnapshotResult(
            bytes=size,
            ms=(time.perf_counter() - started) * 1000,
            capture_ms=capture.ms,
            backends=capture.state.backends,
            skipped=capture.state.skipped,
            at=time.time(),
        )
        self._snapshots += 1
        self._last_snapshot = result
        self._last_error = None
        log.debug("AWS emulator: snapshot of %d bytes in %.1f ms", size, result.ms)
        return result

    def _background_snapshot(self) -> None:
        if self._persistence_enabled() and self.dirty:
            try:
                self.snapshot()
            except StateError as exc:
                self._last_error = str(exc)
                raise

    def _set_aside(self, problem: Exception) -> None:
        assert self._file is not None
        self._moto.reset()  # references resolved while unpickling may have created empty backends
        self.mail.clear()
        reason = str(problem) or type(problem).__name__
        if not isinstance(problem, (UnreadableStateError, StateError)):
            reason = f"{type(problem).__name__}: {reason}"
        self.restore_report = RestoreReport(problem=reason)
        try:
            aside = self._file.move_aside()
        except OSError as exc:
            self._persistence_off = f"the unreadable state file {self._file.path} could not be moved aside"
            log.error(
                "AWS emulator: the state file %s cannot be restored (%s) and cannot be moved aside (%s). "
                "Starting with empty state and persistence OFF so the file is not overwritten; move or "
                "delete it yourself and restart the emulator.",
                self._file.path,
                reason,
                exc.strerror or exc,
            )
            return
        self.restore_report.moved_aside = str(aside)
        log.warning(
            "AWS emulator: the state file %s cannot be restored (%s). It was moved aside to %s and the "
            "emulator starts with empty state (re-run provisioning, e.g. `harness up`).",
            self._file.path,
            reason,
            aside,
        )
