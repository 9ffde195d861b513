"""The harness's own endpoints under `/_harness/`, served on the AWS port in front of moto.

- GET  /_harness/health         {"status": "ok", "restored", "state_file", "pid", "persistence": {...}, ...}
- POST /_harness/snapshot       write a snapshot now: {"bytes", "ms", "capture_ms", "backends", ...}
- POST /_harness/reset          empty every backend and the captured mail, delete the state file
- GET  /_harness/ses/messages   captured mail, oldest first; filters: ?to=ADDRESS&since_id=MESSAGE_ID
- DELETE /_harness/ses/messages forget the captured mail (harness/emulator/transfer.py; also GET/PUT /_harness/state)
- GET  /_harness/cognito/signing-key?pool=POOL_ID
                                the pool's private signing key as a JWK (check `cognito-pool-keys`), for tests
                                that must mint tokens with chosen claims (expired, another issuer); local only
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from harness.emulator.config import CONTROL_PREFIX
from harness.emulator.gate import GateTimeout
from harness.emulator.mail import UnknownMessageError, list_captured_mail
from harness.emulator.runtime import EmulatorRuntime
from harness.emulator.transfer import clear_mail
from harness.errors import HarnessError

_Response = tuple[int, Any]
_Handler = Callable[[EmulatorRuntime, dict[str, str]], _Response]


def _health(runtime: EmulatorRuntime, query: dict[str, str]) -> _Response:
    return 200, runtime.health()


def _snapshot(runtime: EmulatorRuntime, query: dict[str, str]) -> _Response:
    try:
        result = runtime.snapshot()
    except GateTimeout as exc:
        return 503, _error(exc)
    except HarnessError as exc:
        return 409, _error(exc)
    return 200, {"state_file": runtime.health()["state_file"], **result.as_json()}


def _reset(runtime: EmulatorRuntime, query: dict[str, str]) -> _Response:
    try:
        return 200, runtime.reset()
    except GateTimeout as exc:
        return 503, _error(exc)
    except HarnessError as exc:
        return 500, _error(exc)


def _ses_messages(runtime: EmulatorRuntime, query: dict[str, str]) -> _Response:
    try:
        with runtime.gate.shared():
            messages = list_captured_mail(runtime.mail, to=query.get("to"), since_id=query.get("since_id"))
    except UnknownMessageError as exc:
        return 404, {
            "error": f"no captured message has id {exc.args[0]!r}",
            "hint": "use an id listed here or returned by SES as MessageId; /_harness/reset empties the list",
        }
    return 200, messages


def _cognito_signing_key(runtime: EmulatorRuntime, query: dict[str, str]) -> _Response:
    from harness.emulator.fidelity import keys

    pool_id = query.get("pool", "")
    if not keys.enabled():
        return 409, {
            "error": "per-pool signing keys are off (check cognito-pool-keys): moto's shared key signs",
            "hint": "remove cognito-pool-keys from --fidelity-off / HARNESS_EMULATOR_FIDELITY_OFF",
        }
    with runtime.gate.shared():
        pool = keys.find_user_pool(runtime.config.account_id, pool_id)
        if pool is None:
            return 404, {"error": f"no user pool {pool_id!r}", "hint": "pass ?pool=<user pool id>"}
        made = getattr(pool, "harness_signing_kid", None) is None
        jwk = keys.private_jwk(pool)
    if made:
        runtime.note_mutation()  # a new key: the next snapshot must carry it
    return 200, jwk


ROUTES: dict[str, dict[str, _Handler]] = {
    "health": {"GET": _health},
    "snapshot": {"POST": _snapshot},
    "reset": {"POST": _reset},
    "ses/messages": {"GET": _ses_messages, "DELETE": clear_mail},
    "cognito/signing-key": {"GET": _cognito_signing_key},
}


def _error(exc: HarnessError) -> dict[str, Any]:
    return {"error": exc.message, "hint": exc.hint}


class HarnessControlMiddleware:
    """Answers `/_harness/*` requests and passes everything else to `app`."""

    def __init__(self, app: WSGIApplication, runtime: EmulatorRuntime) -> None:
        self.app = app
        self.runtime = runtime

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if not (path + "/").startswith(CONTROL_PREFIX):
            return self.app(environ, start_response)
        route = path[len(CONTROL_PREFIX) :].strip("/")
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        query = {key: values[-1] for key, values in parse_qs(str(environ.get("QUERY_STRING", ""))).items()}
        handlers = ROUTES.get(route)
        extra_headers: list[tuple[str, str]] = []
        if handlers is None:
            status, body = (
                404,
                {
                    "error": f"no harness endpoint {path}",
                    "endpoints": [f"{m} {CONTROL_PREFIX}{r}" for r, hs in ROUTES.items() for m in hs],
                },
            )
        elif method not in handlers:
            allowed = ", ".join(handlers)
            status, body = 405, {"error": f"{path} accepts {allowed}, not {method}"}
            extra_headers.append(("Allow", allowed))
        else:
            status, body = handlers[method](self.runtime, query)
        payload = json.dumps(body, indent=1).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
            *extra_headers,
        ]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [payload]
