"""The emulator's whole state over HTTP, and clearing captured mail: what `harness snapshot` and `mail clear` use.

- GET    /_harness/state          the state as a state-file image (`state_file.MAGIC`, header, pickled body),
                                  captured with the request gate held exclusively (one consistent copy)
- PUT    /_harness/state          replace every backend and the captured mail with such an image; it is
                                  persisted at once (the state file) so a restart keeps it
- DELETE /_harness/ses/messages   forget every captured message (moto's SES outbox and the send details)

The state travels as bytes because the emulator may run in a container whose state file the harness cannot
read. `StateTransferMiddleware` sits in front of `HarnessControlMiddleware` (which only speaks JSON).
"""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from harness.emulator.config import CONTROL_PREFIX, SNAPSHOT_WAIT_SECONDS
from harness.emulator.gate import GateTimeout
from harness.emulator.runtime import _MAIL_EXTRA, EmulatorRuntime
from harness.emulator.state_file import MAGIC, UnreadableStateError
from harness.errors import HarnessError, StateError

log = logging.getLogger(__name__)

STATE_PATH = CONTROL_PREFIX + "state"
MAX_STATE_BYTES = 512 * 1024 * 1024
_LENGTH = struct.Struct(">Q")


def export_state(runtime: EmulatorRuntime, wait: float = SNAPSHOT_WAIT_SECONDS) -> bytes:
    """The whole state as a state-file image, captured while no request runs."""
    with runtime.gate.exclusive(wait):
        captured = runtime._capture()
    header = runtime._header()
    import json

    encoded = json.dumps(header, sort_keys=True).encode()
    return b"".join((MAGIC, _LENGTH.pack(len(encoded)), encoded, captured.state.data))


def split_image(image: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, body) of a state-file image; raises `UnreadableStateError` when it is not one."""
    import json

    if not image.startswith(MAGIC) or len(image) < len(MAGIC) + _LENGTH.size:
        raise UnreadableStateError("it is not an AWS emulator state image (wrong magic bytes)")
    offset = len(MAGIC)
    (length,) = _LENGTH.unpack_from(image, offset)
    offset += _LENGTH.size
    if offset + length > len(image):
        raise UnreadableStateError("its header is truncated")
    try:
        header = json.loads(image[offset : offset + length])
    except ValueError as exc:
        raise UnreadableStateError(f"its header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise UnreadableStateError("its header is not a JSON object")
    return header, image[offset + length :]


def import_state(
    runtime: EmulatorRuntime, image: bytes, wait: float = SNAPSHOT_WAIT_SECONDS
) -> dict[str, Any]:
    """Replace every backend and the captured mail with `image`; nothing changes if it cannot be read."""
    header, body = split_image(image)
    runtime._check_header(header)
    moto_state = runtime._moto
    with runtime.gate.exclusive(wait):
        from harness.emulator import pickling

        pickling.loads(body)  # unreadable bytes fail here, before anything is reset
        moto_state.reset()
        restored = moto_state.restore(body)
        runtime.mail.load(restored.extras.get(_MAIL_EXTRA) or {})
    runtime.note_mutation()
    persisted = False
    try:
        runtime.snapshot()
        persisted = True
    except StateError as exc:  # persistence off: the state is loaded, in memory only
        log.warning("AWS emulator: loaded state not persisted: %s", exc)
    log.info("AWS emulator: loaded %d backends from an uploaded state", len(restored.backends))
    return {"status": "ok", "backends": list(restored.backends), "persisted": persisted}


def clear_mail(runtime: EmulatorRuntime, query: dict[str, str]) -> tuple[int, Any]:
    """DELETE /_harness/ses/messages: empty moto's SES outbox in every account and region."""
    from moto.ses.models import ses_backends

    try:
        with runtime.gate.exclusive(SNAPSHOT_WAIT_SECONDS):
            cleared = 0
            for per_account in list(dict.values(ses_backends)):
                for backend in list(dict.values(per_account)):
                    cleared += len(backend.sent_messages)
                    backend.sent_messages.clear()
            runtime.mail.clear()
    except GateTimeout as exc:
        return 503, {"error": exc.message, "hint": exc.hint}
    runtime.note_mutation()
    return 200, {"status": "ok", "cleared": cleared}


class StateTransferMiddleware:
    """Serves GET/PUT `/_harness/state` (bytes, not JSON) and passes everything else on."""

    def __init__(self, app: WSGIApplication, runtime: EmulatorRuntime) -> None:
        self.app = app
        self.runtime = runtime

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).rstrip("/") != STATE_PATH:
            return self.app(environ, start_response)
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            if method == "GET":
                return _reply(start_response, 200, export_state(self.runtime), "application/octet-stream")
            if method == "PUT":
                return _json(start_response, 200, import_state(self.runtime, _body(environ)))
        except GateTimeout as exc:
            return _json(start_response, 503, {"error": exc.message, "hint": exc.hint})
        except HarnessError as exc:
            return _json(start_response, 409, {"error": exc.message, "hint": exc.hint})
        except Exception as exc:  # an image that unpickles badly: refused, state unchanged
            return _json(
                start_response, 400, {"error": f"unreadable state image: {type(exc).__name__}: {exc}"}
            )
        return _json(start_response, 405, {"error": f"{STATE_PATH} accepts GET, PUT, not {method}"})


def _body(environ: WSGIEnvironment) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "0")
    except ValueError:
        length = 0
    if length <= 0 or length > MAX_STATE_BYTES:
        raise StateError(f"PUT {STATE_PATH} needs a body of 1..{MAX_STATE_BYTES} bytes, got {length}")
    stream: io.BufferedIOBase = environ["wsgi.input"]
    chunks, left = [], length
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _json(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    import json

    return _reply(start_response, status, json.dumps(body).encode(), "application/json")


def _reply(start_response: StartResponse, status: int, payload: bytes, content_type: str) -> list[bytes]:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(payload))),
        ("Cache-Control", "no-store"),
    ]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [payload]
