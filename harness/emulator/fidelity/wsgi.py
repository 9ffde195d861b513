"""Small WSGI helpers the checks share: buffered bodies and AWS-shaped error responses."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment
from xml.sax.saxutils import escape

MAX_BUFFERED_BODY = 5 * 1024**3  # S3's largest single PUT/POST


def read_body(environ: WSGIEnvironment) -> bytes:
    """The whole request body, leaving an equivalent stream in `environ` for the next app."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > MAX_BUFFERED_BODY:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def request_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def json_response(
    start_response: StartResponse,
    status: int,
    body: dict[str, Any],
    extra: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    payload = json.dumps(body).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(payload))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        *(extra or []),
    ]
    start_response(f"{status} {'OK' if status == 200 else 'Bad Request'}", headers)
    return [payload]


def json_error(start_response: StartResponse, code: str, message: str, status: int = 400) -> Iterable[bytes]:
    """An AWS JSON-1.1 protocol error (what boto3 reads `Error.Code`/`Error.Message` from)."""
    return json_response(
        start_response, status, {"__type": code, "message": message}, [("x-amzn-ErrorType", f"{code}:")]
    )


_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed", 411: "Length Required"}


def s3_error(
    environ: WSGIEnvironment,
    start_response: StartResponse,
    status: int,
    code: str,
    message: str,
    details: dict[str, str | int] | None = None,
) -> Iterable[bytes]:
    """S3's XML error document (no body for HEAD, like S3)."""
    rid = request_id()
    fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in (details or {}).items())
    payload = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{fields}"
        f"<RequestId>{rid}</RequestId><HostId>{rid}</HostId></Error>"
    ).encode()
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", rid), ("x-amz-id-2", rid)]
    if str(environ.get("REQUEST_METHOD", "")).upper() == "HEAD":
        payload = b""
    headers.append(("Content-Length", str(len(payload))))
    start_response(f"{status} {_STATUS_TEXT.get(status, 'Error')}", headers)
    return [payload]
