"""ASGI middleware: request ids, and CORS configured from the settings on first use."""

from __future__ import annotations

import uuid

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import get_settings

REQUEST_ID_HEADER = "x-request-id"
EXPOSED_HEADERS = ["Retry-After", "X-Request-ID", "X-AI-Quota-Warning", "X-RateLimit-Limit"]


class RequestIdMiddleware:
    """Echo (or assign) `X-Request-ID`, so a client's report can be matched to the server's log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming[:64] if incoming else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((REQUEST_ID_HEADER.encode(), request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


class SettingsCORSMiddleware:
    """CORS for the frontend's wildcard subdomains (CORS_ORIGIN_REGEX; localhost subdomains when local)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors: ASGIApp | None = None

    def _build(self) -> ASGIApp:
        regex = get_settings().cors_regex
        if regex is None:
            return self.app
        return CORSMiddleware(
            self.app,
            allow_origin_regex=regex,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Tenant", "X-Request-ID"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._cors is None:
            self._cors = self._build()
        await self._cors(scope, receive, send)
