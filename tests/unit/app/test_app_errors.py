"""The error boundary: outages answer 503 + Retry-After, other errors 500, and neither is re-raised (uvicorn
would close the keep-alive connection without `Connection: close`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.exceptions
from botocore.exceptions import EndpointConnectionError
from sqlalchemy import exc as sa_exc

from app.errors import ErrorBoundaryMiddleware, unavailable_dependency


def _raising(exc: BaseException) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise exc

    return app


def _call(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    asyncio.run(ErrorBoundaryMiddleware(app)(scope, receive, send))  # must not raise
    return sent


def _wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer from cause
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (redis.exceptions.ConnectionError("down"), "redis"),
        (sa_exc.OperationalError("SELECT 1", {}, Exception("refused")), "database"),
        (sa_exc.TimeoutError("pool"), "database"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "aws"),
        (ConnectionRefusedError(111, "refused"), "a dependency"),
        (_wrapped(RuntimeError("wrapper"), redis.exceptions.TimeoutError("slow")), "redis"),
        (ValueError("a bug"), None),
    ],
)
def test_outages_are_recognised(exc: BaseException, dependency: str | None) -> None:
    assert unavailable_dependency(exc) == dependency


def test_an_outage_answers_503_with_retry_after() -> None:
    start, body = _call(_raising(redis.exceptions.ConnectionError("down")))
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"5"
    assert b"dependency_unavailable" in body["body"]


def test_a_bug_answers_500_without_detail() -> None:
    start, body = _call(_raising(ValueError("secret detail")))
    assert start["status"] == 500
    assert b"internal_error" in body["body"]
    assert b"secret detail" not in body["body"]
