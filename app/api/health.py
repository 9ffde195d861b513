"""`GET /api/v1/health`: 200 when every dependency answers, 503 (same body shape, `Retry-After`) when one
does not. The dependencies are those the request paths need: the database, Redis (rate limits, AI quotas,
the task queue), S3 (media) and Cognito (the JWKS every token is verified against)."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.aws import probe_s3_client
from app.db import get_engine
from app.errors import ErrorResponse
from app.redis_client import get_redis
from app.settings import get_settings

CHECK_TIMEOUT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5

router = APIRouter(prefix="/api/v1", tags=["health"])


class DependencyStatus(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, DependencyStatus]


async def _database() -> None:
    async with get_engine().connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _redis() -> None:
    await get_redis().ping()


async def _s3() -> None:
    bucket = get_settings().s3_bucket
    await asyncio.to_thread(probe_s3_client().head_bucket, Bucket=bucket)


async def _cognito() -> None:
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECONDS) as client:
        response = await client.get(get_settings().jwks_url)
        response.raise_for_status()


async def _check(probe: object) -> DependencyStatus:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)  # type: ignore[arg-type]
    except Exception as exc:  # any failure means "down"; the type is enough to diagnose, never a trace
        return DependencyStatus(
            ok=False, latency_ms=round((time.perf_counter() - started) * 1000, 2), error=type(exc).__name__
        )
    return DependencyStatus(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


async def health_report() -> Health:
    names = ("database", "redis", "s3", "cognito")
    results = await asyncio.gather(_check(_database()), _check(_redis()), _check(_s3()), _check(_cognito()))
    checks = dict(zip(names, results, strict=True))
    return Health(status="ok" if all(c.ok for c in checks.values()) else "unavailable", checks=checks)


@router.get(
    "/health",
    response_model=Health,
    responses={
        503: {"model": Health, "description": "A dependency is down"},
        413: {"model": ErrorResponse, "description": "Request body too large"},
        422: {"model": ErrorResponse, "description": "Control characters in the URL"},
    },
    summary="Liveness and dependency status (the ALB health check)",
)
async def health() -> JSONResponse:
    report = await health_report()
    if report.status == "ok":
        return JSONResponse(report.model_dump())
    return JSONResponse(
        report.model_dump(), status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )
