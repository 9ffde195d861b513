"""boto3 clients, one per process and service (thread-safe; creating one costs tens of milliseconds).

boto3 is imported with the first client, not with this module (~0.2 s): the worker starts without it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from app.settings import get_settings


def _client(service: str, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    settings = get_settings()
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,  # None on AWS: the regional endpoint
        config=Config(retries={"mode": "standard", "max_attempts": 3}, **config),
    )


@lru_cache(maxsize=1)
def s3_client() -> Any:
    # Path-style addressing against an emulator: `bucket.127.0.0.1` does not resolve.
    addressing = "path" if get_settings().aws_endpoint_url else "virtual"
    return _client("s3", signature_version="s3v4", s3={"addressing_style": addressing})


@lru_cache(maxsize=1)
def ses_client() -> Any:
    # No retries inside botocore: a send whose connection dropped after the request went out may have been
    # accepted, and only the caller can tell that attempt from a refused one (app/emails.py: AmbiguousSend).
    # The worker's task retries it, with backoff, and marks the resend (app/workers/tasks.py).
    import boto3
    from botocore.config import Config

    settings = get_settings()
    return boto3.client(
        "ses",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


@lru_cache(maxsize=1)
def cognito_client() -> Any:
    return _client("cognito-idp")


@lru_cache(maxsize=1)
def probe_s3_client() -> Any:
    """For the health check: fails fast (1 s connect, 2 s read, no retries) instead of retrying."""
    import boto3
    from botocore.config import Config

    addressing = "path" if get_settings().aws_endpoint_url else "virtual"
    settings = get_settings()
    return boto3.client(
        "s3",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing},  # type: ignore[arg-type]
            connect_timeout=1,
            read_timeout=2,
            retries={"mode": "standard", "max_attempts": 1},
        ),
    )
