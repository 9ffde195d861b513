"""One JSON error shape for every failure: `{"error": {"code", "message", ...}}`, never a stack trace.

Errors nothing else handled meet `ErrorBoundaryMiddleware`, the outermost middleware: a dependency outage
(Postgres, Redis, the AWS endpoint unreachable) answers **503** `dependency_unavailable` with `Retry-After`,
anything else a plain 500 — and the exception stops there. (Starlette's own last-resort handler re-raises
after answering, and uvicorn then closes the keep-alive connection without `Connection: close`: a client's
next request on it was reset. Here the connection stays usable.)
"""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError
from botocore.exceptions import ReadTimeoutError as BotoReadTimeoutError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The error types live in app/error_types.py (the worker imports them without the web stack); the API's
# modules import them from here.
from app.error_types import (  # noqa: F401
    ApiError,
    Conflict,
    Forbidden,
    MfaRequired,
    NotFound,
    QuotaExceeded,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

logger = logging.getLogger("app.errors")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """The body of every non-2xx response."""

    error: ErrorBody


# For `responses=` in route declarations, so the OpenAPI schema shows the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "Bad request (a body that is not JSON, a confirmation that does not match)"),
        (401, "Missing or invalid bearer token"),
        (403, "Not a member of the tenant, or the role is too low"),
        (404, "No such resource in this tenant"),
        (405, "Method not allowed"),
        (409, "Conflicts with the current state (a duplicate, a used invite)"),
        (413, "Request body too large"),
        (422, "Invalid request (schema, bounds, control characters)"),
        (429, "Rate limited (see Retry-After)"),
        (503, "A dependency (identity provider, database, Redis) is unavailable"),
    )
}


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, **extra))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    response = _error(exc.status_code, exc.code, exc.message)
    response.headers.update(exc.headers)
    return response


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    response = _error(exc.status_code, code, str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Location and message only: echoing the rejected input back could leak what a client sent.
    details = [{"loc": list(err.get("loc", ())), "msg": err.get("msg", "")} for err in exc.errors()]
    return _error(422, "validation_error", "The request is invalid.", details=details)


async def _database_refused(request: Request, exc: Exception) -> JSONResponse:
    """The safety net behind the models' bounds: input the database refuses is the client's error."""
    from sqlalchemy.exc import DataError, IntegrityError

    logger.warning("database refused input on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__
                   if hasattr(exc, "orig") else type(exc).__name__)  # fmt: skip
    if isinstance(exc, IntegrityError):
        return _error(409, "conflict", "The request conflicts with existing data.")
    assert isinstance(exc, DataError)
    return _error(422, "validation_error", "A value is out of range or malformed for its field.")


DEPENDENCY_RETRY_AFTER_SECONDS = 5


def unavailable_dependency(exc: BaseException) -> str | None:
    """The dependency whose outage `exc` (or an exception it was raised from) is, or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.TimeoutError):  # the pool: no connection came free in time
            return "database"
        if isinstance(current, (sa_exc.OperationalError, sa_exc.InterfaceError)) or (
            isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated
        ):
            return "database"
        if isinstance(current, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return "redis"
        if isinstance(
            current,
            (EndpointConnectionError, ConnectTimeoutError, BotoReadTimeoutError, ConnectionClosedError),
        ):
            return "aws"
        if isinstance(current, (ConnectionError, TimeoutError)):  # asyncpg's refused connect, for one
            return "a dependency"
        current = current.__cause__ or current.__context__
    return None


class ErrorBoundaryMiddleware:
    """Last resort for exceptions no handler took: 503 for outages, 500 otherwise; never re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            path = scope.get("path", "")
            dependency = unavailable_dependency(exc)
            if dependency is not None:
                logger.warning(
                    "%s unavailable on %s %s: %s", dependency, scope.get("method"), path, type(exc).__name__
                )
                response = _error(
                    503,
                    "dependency_unavailable",
                    f"{dependency} is unavailable; retry shortly.",
                    details=None,
                )
                response.headers["Retry-After"] = str(DEPENDENCY_RETRY_AFTER_SECONDS)
            else:
                logger.exception("unhandled error on %s %s", scope.get("method"), path, exc_info=exc)
                response = _error(500, "internal_error", "Internal server error.")
            if started:  # half a response went out: only closing the connection can tell the client
                raise
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    from sqlalchemy.exc import DataError, IntegrityError

    app.add_exception_handler(DataError, _database_refused)
    app.add_exception_handler(IntegrityError, _database_refused)
    app.add_middleware(ErrorBoundaryMiddleware)  # wraps every middleware added before it
