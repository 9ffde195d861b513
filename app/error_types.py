"""The API's error types: plain exceptions, importable without the web stack (the worker raises and catches them;
`app/errors.py` turns them into responses and re-exports them)."""

from __future__ import annotations


class ApiError(Exception):
    """An error the API reports as-is to the client."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"


class MfaRequired(Forbidden):
    """The caller's role requires TOTP MFA and the caller has not set it up."""

    code = "mfa_required"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class TooManyRequests(ApiError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers={**(headers or {}), "Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class QuotaExceeded(TooManyRequests):
    code = "ai_quota_exceeded"


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "service_unavailable"
