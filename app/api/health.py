"""`GET /api/v1/health`: 200 when every dependency answers, 503 (same body shape) when one does not."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.db import get_engine
from app.errors import ErrorResponse
from app.redis_client import get_redis

CHECK_TIMEOUT_SECONDS = 2.0

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
    database, redis = await asyncio.gather(_check(_database()), _check(_redis()))
    checks = {"database": database, "redis": redis}
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
    return JSONResponse(report.model_dump(), status_code=200 if report.status == "ok" else 503)
