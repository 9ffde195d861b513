"""The ASGI app: `uvicorn app.main:app` (topology.toml [services.backend])."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app.api import ai, catalog, donations, health, invites, media, orders, tenants
from app.db import get_engine
from app.errors import install_error_handlers
from app.input_guard import InputGuardMiddleware
from app.middleware import RequestIdMiddleware, SettingsCORSMiddleware
from app.ratelimit import enforce_rate_limit
from app.redis_client import get_redis
from app.settings import get_settings

API_PREFIX = "/api/v1"


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    get_settings()  # invalid configuration fails the start, not the first request
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    yield
    await get_engine().dispose()
    await get_redis().aclose()


def create_app() -> FastAPI:
    app = FastAPI(
        title="SaaS reference backend",
        version="1.0.0",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.include_router(health.router)
    rate_limited = [Depends(enforce_rate_limit)]
    for module in (tenants, invites, catalog, orders, donations, media, ai):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=rate_limited)
    app.add_middleware(InputGuardMiddleware)  # innermost: its 413/422 still get CORS headers and a request id
    app.add_middleware(SettingsCORSMiddleware)
    install_error_handlers(app)  # its boundary middleware sits outside CORS, inside the request id
    app.add_middleware(RequestIdMiddleware)
    return app


app = create_app()
