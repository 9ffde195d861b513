"""The one waiting primitive (harness.readiness.wait_for): done returns the value, the deadline raises
WaitTimeout in one format, gave_up stops early, the interval grows and never overshoots the deadline."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.errors import HarnessError
from harness.readiness import (
    DEFAULT_MAX_POLL_SECONDS,
    CallableCheck,
    HttpOk,
    NotYet,
    PortOpen,
    WaitTimeout,
    wait_for,
    wait_until_ready,
)


def test_wait_for_returns_the_first_value_that_is_not_notyet() -> None:
    answers = iter([NotYet("cold"), NotYet("warming"), {"ready": True}])
    slept: list[float] = []
    assert wait_for("the kettle", lambda: next(answers), timeout=10, sleep=slept.append) == {"ready": True}
    assert len(slept) == 2 and slept[1] > slept[0]


def test_a_falsy_value_is_still_done() -> None:
    assert wait_for("zero", lambda: 0, timeout=1) == 0


def test_the_deadline_raises_one_format_with_the_last_reason_and_what_was_seen() -> None:
    tries = iter(range(1000))

    def attempt() -> NotYet:
        return NotYet(f"status PENDING (try {next(tries)})", seen=["PENDING"])

    started = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_for("stack saas-app CREATE_COMPLETE", attempt, timeout=0.3, hint="look at the events")
    elapsed = time.monotonic() - started
    exc = info.value
    assert isinstance(exc, HarnessError) and exc.hint == "look at the events"
    assert exc.message.startswith("stack saas-app CREATE_COMPLETE: not done within 0.3s (")
    assert exc.message.endswith(f"tries): status PENDING (try {exc.tries - 1})")
    assert exc.last == ["PENDING"] and exc.tries >= 2 and not exc.gave_up
    assert 0.3 <= elapsed < 0.3 + DEFAULT_MAX_POLL_SECONDS + 0.5  # no sleep past the deadline


def test_gave_up_stops_at_once_with_its_own_reason() -> None:
    calls = []
    with pytest.raises(WaitTimeout) as info:
        wait_for(
            "postgres", lambda: calls.append(1) or NotYet("no answer"), timeout=60, gave_up=lambda: "exited 1"
        )
    assert info.value.gave_up and info.value.message == "postgres: exited 1" and len(calls) == 1


def test_the_interval_grows_to_the_cap() -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: NotYet("no"), timeout=0.8, interval=0.05, max_interval=0.2, sleep=sleep)
    grown = slept[:-1]  # the last sleep is cut to the deadline
    assert grown[0] == pytest.approx(0.05) and max(slept) <= 0.2 and grown == sorted(grown)


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[int]]]:
    statuses = [503, 503, 200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses.pop(0) if len(statuses) > 1 else statuses[0])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", statuses
    finally:
        server.shutdown()
        server.server_close()


def test_wait_until_ready_polls_a_real_http_server_until_200(http_server: tuple[str, list[int]]) -> None:
    url, _ = http_server
    assert HttpOk(url).check() == f"GET {url}: HTTP 503"
    assert wait_until_ready(HttpOk(url), timeout=10) is None


def test_wait_until_ready_reports_the_timeout_and_a_gave_up_reason() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    reason = wait_until_ready(PortOpen("127.0.0.1", port), timeout=0.2)
    assert reason is not None and reason.startswith("not healthy within 0.2s (") and f":{port}" in reason
    assert (
        wait_until_ready(CallableCheck("never", lambda: "no"), timeout=30, gave_up=lambda: "exited")
        == "exited"
    )
