"""The backend's Redis client (asyncio), on the component's own ACL user from REDIS_URL."""

from __future__ import annotations

from functools import lru_cache

from redis.asyncio import Redis

from app.settings import get_settings

SOCKET_TIMEOUT_SECONDS = 2.0


@lru_cache(maxsize=1)
def get_redis() -> Redis:
    return Redis.from_url(
        get_settings().redis_url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
