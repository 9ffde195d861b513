"""Readiness as strategy objects, and the one waiting primitive of the harness.

`wait_for(what, attempt, timeout=...)` polls `attempt()` until it returns a value (done) instead of `NotYet`
(not yet, and why), with a gently growing interval; past the deadline it raises `WaitTimeout`, whose message
is always `<what>: not done within <timeout>s (<tries> tries): <last reason>`, or, when `gave_up` names a
reason to stop early, that reason. Every poll loop in harness/ goes through it (or a boto3 waiter where AWS has
one); `wait_until_ready` is the health-check form of it.

Readiness strategies (`PortOpen`, `HttpOk`, `CallableCheck`, `LogContains`, `AllOf`) each know what they check.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import HarnessError

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_POLL_SECONDS = 0.05
DEFAULT_MAX_POLL_SECONDS = 0.25
BACKOFF = 1.3

T = TypeVar("T")


@dataclass(frozen=True)
class NotYet:
    """What an attempt returns while the awaited thing is not there: why, and what it saw (kept on the
    `WaitTimeout` for the caller's report)."""

    reason: str
    seen: Any = None


class WaitTimeout(HarnessError):
    """A wait passed its deadline (or gave up). `reason` is the last attempt's; `last` what it saw."""

    def __init__(
        self,
        what: str,
        timeout: float,
        reason: str,
        *,
        tries: int,
        waited: float,
        last: Any = None,
        gave_up: bool = False,
        hint: str | None = None,
    ) -> None:
        message = (
            f"{what}: {reason}"
            if gave_up
            else f"{what}: not done within {timeout:g}s ({tries} tries): {reason}"
        )
        super().__init__(message, hint=hint)
        self.what, self.timeout, self.reason = what, timeout, reason
        self.tries, self.waited, self.last, self.gave_up = tries, waited, last, gave_up


def wait_for(
    what: str,
    attempt: Callable[[], T | NotYet],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    interval: float = DEFAULT_POLL_SECONDS,
    max_interval: float = DEFAULT_MAX_POLL_SECONDS,
    gave_up: Callable[[], str | None] | None = None,
    hint: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `attempt()` until it returns something other than `NotYet`, and return that.

    The interval grows by `BACKOFF` up to `max_interval` (a slow start does not burn the CPU the starting
    thing needs); the last sleep never overshoots the deadline. `WaitTimeout` after `timeout` seconds, or as
    soon as `gave_up()` returns a reason (e.g. the process exited)."""
    started = time.monotonic()
    deadline = started + timeout
    tries = 0
    while True:
        tries += 1
        result = attempt()
        if not isinstance(result, NotYet):
            return result
        now = time.monotonic()
        if gave_up is not None and (stop := gave_up()) is not None:
            raise WaitTimeout(
                what,
                timeout,
                stop,
                tries=tries,
                waited=now - started,
                last=result.seen,
                gave_up=True,
                hint=hint,
            )
        if now >= deadline:
            raise WaitTimeout(
                what, timeout, result.reason, tries=tries, waited=now - started, last=result.seen, hint=hint
            )
        sleep(max(0.0, min(interval, deadline - now)))
        interval = min(interval * BACKOFF, max_interval)


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
            status = http_status(self.url, timeout=2)
        except (OSError, ValueError) as exc:
            return f"GET {self.url}: {getattr(exc, 'reason', exc)}"
        return None if status in self.statuses else f"GET {self.url}: HTTP {status}"


def http_status(url: str, timeout: float) -> int:
    """The status code of `GET url`, the response read to its end. Plain `http://` speaks HTTP/1.1 over a socket
    (urllib's import — http.client, email, ssl — costs ~50 ms of every `harness` command that checks health);
    anything else goes through urllib. Raises OSError (unreachable, timed out) or ValueError (not HTTP)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        sock.sendall(request.encode("ascii"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.split(b"\r\n")
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
            raise ValueError(f"not an HTTP response: {data[:80]!r}")
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (h.partition(b":") for h in header_lines)
        )
        length = headers.get(b"content-length")
        remaining = int(length) - len(body) if length is not None and length.isdigit() else None
        # read the rest (to the length given, else to the end): the server finishes writing, nothing is reset
        while remaining is None or remaining > 0:
            chunk = sock.recv(65536)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
    return int(fields[1])


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
    max_interval: float = DEFAULT_MAX_POLL_SECONDS,
    gave_up: Callable[[], str | None] = lambda: None,
) -> str | None:
    """Poll `check` until healthy (returns None) or the deadline passes / `gave_up` says why (returns the
    reason, in `wait_for`'s format)."""

    def attempt() -> bool | NotYet:
        reason = check.check()
        return True if reason is None else NotYet(reason)

    try:
        wait_for(
            check.description,
            attempt,
            timeout=timeout,
            interval=interval,
            max_interval=max_interval,
            gave_up=gave_up,
        )
    except WaitTimeout as exc:
        return (
            exc.reason
            if exc.gave_up
            else f"not healthy within {timeout:g}s ({exc.tries} tries): {exc.reason}"
        )
    return None
