"""Readiness as strategy objects: each knows what it checks, and waiting polls it with a deadline."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_POLL_SECONDS = 0.05


class Readiness:
    """A health check. `check()` returns None when healthy, else a short reason."""

    description: str = "ready"

    def check(self) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class PortOpen(Readiness):
    host: str
    port: int

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"TCP connect to {self.host}:{self.port}"

    def check(self) -> str | None:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return None
        except OSError as exc:
            return f"{self.host}:{self.port}: {exc.strerror or exc}"


@dataclass(frozen=True)
class HttpOk(Readiness):
    url: str
    statuses: tuple[int, ...] = (200,)

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"GET {self.url} answers {'/'.join(map(str, self.statuses))}"

    def check(self) -> str | None:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            return f"GET {self.url}: {getattr(exc, 'reason', exc)}"
        return None if status in self.statuses else f"GET {self.url}: HTTP {status}"


@dataclass(frozen=True)
class CallableCheck(Readiness):
    """A check given as a function returning None (healthy) or a reason; used for protocol-level pings."""

    label: str
    func: Callable[[], str | None]

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.label

    def check(self) -> str | None:
        try:
            return self.func()
        except Exception as exc:  # a ping that raises is simply "not ready yet"
            return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class LogContains(Readiness):
    """Healthy once a line of the log (written after `offset`) contains `marker`."""

    path: Path
    marker: str
    offset: int = 0

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"{self.path.name} contains {self.marker!r}"

    def check(self) -> str | None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                if self.marker.encode() in fh.read():
                    return None
        except OSError as exc:
            return str(exc)
        return f"{self.marker!r} not yet in {self.path}"


@dataclass(frozen=True)
class AllOf(Readiness):
    checks: tuple[Readiness, ...] = field(default_factory=tuple)

    @property
    def description(self) -> str:  # type: ignore[override]
        return " and ".join(c.description for c in self.checks)

    def check(self) -> str | None:
        for c in self.checks:
            if (reason := c.check()) is not None:
                return reason
        return None


def wait_until_ready(
    check: Readiness,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    interval: float = DEFAULT_POLL_SECONDS,
    gave_up: Callable[[], str | None] = lambda: None,
) -> str | None:
    """Poll until healthy (returns None) or the deadline passes / `gave_up` says why (returns the reason).

    The poll interval grows gently so a slow start does not burn the CPU that the starting server needs.
    """
    deadline = time.monotonic() + timeout
    reason: str | None = "not checked"
    while True:
        reason = check.check()
        if reason is None:
            return None
        if (stop := gave_up()) is not None:
            return stop
        if time.monotonic() >= deadline:
            return f"not healthy after {timeout:.0f}s: {reason}"
        time.sleep(interval)
        interval = min(interval * 1.3, 0.25)
