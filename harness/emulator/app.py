"""The emulator's WSGI application: moto's dispatcher behind a chain of middlewares built in one place.

Outermost first:

0. `ControlGuardMiddleware`: the `/_harness/` paths that hand out secrets answer only loopback clients with
   the stack's control token (harness/emulator/control_guard.py); `StateTransferMiddleware` serves
   `/_harness/state`.
1. `HarnessControlMiddleware`: answers `/_harness/...` itself; nothing there reaches moto.
2. `RequestGateMiddleware`: every AWS request holds the request gate shared until its response is closed,
   and changing requests mark the state dirty. A changing request's response is buffered and released only
   once a snapshot holding the change is on disk (`EmulatorRuntime.persist`: acknowledged means durable);
   if that snapshot fails (disk full, or running requests kept it out for `SNAPSHOT_WAIT_SECONDS`) the
   answer is a retryable 503, never the success. With `--async-snapshots` it schedules a background
   snapshot instead.
3. `SesV2PathShapes`: old-shape SES v2 requests rewritten, and v1's identity state given to v2
   (harness/emulator/ses_identities.py); then `SesCaptureMiddleware`: records what moto's SES forgets about accepted sends.
4. `checks`: AWS-faithful checks added by later work (Cognito SECRET_HASH, SigV4 presigned URLs, ...).
   Each is a `Middleware`; the first in the sequence sees the request first.
5. moto's `DomainDispatcherApplication`: routes to the per-service Flask app, exactly like `moto_server`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from html import escape
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from harness.emulator.config import STATE_CHANGED_KEY
from harness.emulator.control import HarnessControlMiddleware
from harness.emulator.control_guard import ControlGuardMiddleware
from harness.emulator.mail import SesCaptureMiddleware
from harness.emulator.runtime import EmulatorRuntime
from harness.emulator.ses_identities import SesV2PathShapes
from harness.emulator.transfer import StateTransferMiddleware

Middleware = Callable[[WSGIApplication], WSGIApplication]
"""Wraps a WSGI app in another; how later work adds checks in front of moto's handlers."""

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_moto_app() -> Any:
    """moto's own all-services WSGI app (what `moto_server` serves)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def build_wsgi_app(
    runtime: EmulatorRuntime, moto_app: WSGIApplication, checks: Sequence[Middleware] = ()
) -> WSGIApplication:
    """Wrap `moto_app` in the middleware chain described in the module docstring."""
    app = moto_app
    for check in reversed(checks):
        app = check(app)
    app = SesCaptureMiddleware(app, runtime.mail, runtime.config.account_id, runtime.config.region)
    app = SesV2PathShapes(app, runtime.config.account_id, runtime.config.region)  # one SES for v1 and v2
    app = RequestGateMiddleware(app, runtime)
    app = StateTransferMiddleware(HarnessControlMiddleware(app, runtime), runtime)
    return ControlGuardMiddleware(app, runtime.config.control_token, runtime.config.control_from)


class RequestGateMiddleware:
    """Holds the request gate shared for each request and reports changing requests to the runtime."""

    def __init__(self, app: WSGIApplication, runtime: EmulatorRuntime) -> None:
        self.app = app
        self.runtime = runtime

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        mutating = str(environ.get("REQUEST_METHOD", "GET")).upper() not in READ_ONLY_METHODS
        sync = self.runtime.config.sync_snapshots
        held = _HeldResponse(start_response) if mutating and sync else None
        self.runtime.gate.enter_shared()
        try:
            result = self.app(environ, held.start_response if held else start_response)
            changed = mutating or bool(environ.get(STATE_CHANGED_KEY))
            if held is not None:
                body = held.body + _drain(result)  # nothing has reached the client yet
        except BaseException:
            self._finish(mutating or bool(environ.get(STATE_CHANGED_KEY)))
            raise
        if held is None:
            return _GatedResponse(
                result, lambda: self._finish(changed or bool(environ.get(STATE_CHANGED_KEY)))
            )
        number = self._finish(True)
        if number is not None and not self.runtime.persist(number):
            # Acknowledged means durable: a change that is not on disk is never answered as done. The
            # client sees a retryable 503 (the change may have happened, as after a lost answer).
            return _not_durable(environ, start_response, self.runtime.last_error)
        held.release()
        return body

    def _finish(self, mutating: bool) -> int | None:
        try:
            return self.runtime.note_mutation() if mutating else None
        finally:
            self.runtime.gate.leave_shared()


class _HeldResponse:
    """A `start_response` that holds the status and headers until `release()`: a changing request's answer
    leaves only once its change is on disk."""

    def __init__(self, start_response: StartResponse) -> None:
        self._start_response = start_response
        self._held: tuple[Any, ...] | None = None
        self.body: list[bytes] = []

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self._held = (status, headers, exc_info)
        return self.body.append  # WSGI's legacy write(): held with the rest of the body

    def release(self) -> None:
        assert self._held is not None, "the application never called start_response"
        self._start_response(*self._held)


def _not_durable(environ: WSGIEnvironment, start_response: StartResponse, problem: str | None) -> list[bytes]:
    message = f"the AWS emulator could not save this change to disk ({problem or 'unknown error'}); retry"
    if "json" in str(environ.get("CONTENT_TYPE", "")):
        body = json.dumps({"__type": "ServiceUnavailable", "message": message}).encode()
        content_type = "application/x-amz-json-1.1"
    else:
        body = (
            "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
            f"<Message>{escape(message)}</Message></Error></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    start_response(
        "503 Service Unavailable",
        [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Retry-After", "1")],
    )
    return [body]


def _drain(result: Iterable[bytes]) -> list[bytes]:
    try:
        return list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


class _GatedResponse:
    """A response body that runs `on_close` once, when the server closes it (after the last byte)."""

    def __init__(self, result: Iterable[bytes], on_close: Callable[[], object]) -> None:
        self._result = result
        self._on_close: Callable[[], object] | None = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()
