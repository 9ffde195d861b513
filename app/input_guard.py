"""The API's input boundary, in one place, before any route runs: body size and text that no column can hold.

- A body larger than `MAX_BODY_BYTES` → 413, decided from Content-Length when the client sends one, else
  while it streams in: the body is never read past the limit.
- A control character (C0 except tab/newline/carriage return, and DEL) or a lone surrogate in the path, a
  query parameter (name or value) or any string (key or value) of a JSON body → 422 with the location.
  PostgreSQL cannot store NUL in text and asyncpg cannot encode a lone surrogate: without this, each text
  field would answer 500 for them. Every route gets it, none needs to declare it.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ErrorBody, ErrorResponse

MAX_BODY_BYTES = 1024 * 1024  # the largest JSON body the API accepts (its biggest field is 8 000 characters)
FORBIDDEN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")
FORBIDDEN_IN_URL = re.compile(r"[\x00-\x1f\x7f]|[\ud800-\udfff]")
TEXT_MESSAGE = "control characters and unpaired surrogates are not allowed in text"


def forbidden_text(value: str, *, url: bool = False) -> bool:
    return (FORBIDDEN_IN_URL if url else FORBIDDEN_TEXT).search(value) is not None


def _json_problems(value: Any, loc: list[str | int]) -> list[list[str | int]]:
    if isinstance(value, str):
        return [loc] if forbidden_text(value) else []
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _json_problems(item, [*loc, i])]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += [[*loc, key]] if forbidden_text(key) else []
            found += _json_problems(item, [*loc, key])
        return found
    return []


def _response(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    return json.dumps(body.model_dump(exclude_none=True), ensure_ascii=True).encode()


async def _send_error(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _too_large() -> bytes:
    return _response(413, "payload_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes.")


def _invalid(locations: list[list[str | int]]) -> bytes:
    details = [{"loc": loc, "msg": TEXT_MESSAGE} for loc in locations[:20]]
    return _response(422, "validation_error", "The request is invalid.", details)


def url_problems(scope: Scope) -> list[list[str | int]]:
    found: list[list[str | int]] = []
    path = scope.get("path", "")
    if forbidden_text(path, url=True):
        found.append(["path"])
    query = scope.get("query_string", b"").decode("latin-1")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    except ValueError:
        return [*found, ["query"]]
    for name, value in pairs:
        if forbidden_text(name, url=True) or forbidden_text(value, url=True):
            found.append(["query", unquote(name, errors="replace")])
    return found


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = url_problems(scope)
        if problems:
            await _send_error(send, 422, _invalid(problems))
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_error(send, 413, _too_large())  # refused before a byte of it is read
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_error(send, 413, _too_large())
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and (content_type == b"application/json" or content_type.endswith(b"+json")):
            try:
                document = json.loads(body)
            except ValueError:
                document = None  # FastAPI answers it (422 for bad JSON, 400 for bad UTF-8)
            problems = _json_problems(document, ["body"])
            if problems:
                await _send_error(send, 422, _invalid(problems))
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
