"""Fixed-window rate limiting per caller in `rl:*`: over the limit → 429 with `Retry-After`."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from app import keys
from app.auth import CurrentPrincipal
from app.errors import TooManyRequests
from app.redis_client import get_redis
from app.settings import get_settings

logger = logging.getLogger("app.ratelimit")

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Window:
    start: int
    retry_after: int  # whole seconds until the next window opens (at least 1)


def fixed_window(now: float, length: int = WINDOW_SECONDS) -> Window:
    start = int(now // length) * length
    return Window(start=start, retry_after=max(1, math.ceil(start + length - now)))


async def enforce_rate_limit(principal: CurrentPrincipal) -> None:
    """Count the request against the caller's window; fail open (logged) if Redis is unreachable."""
    limit = get_settings().rate_limit_per_minute
    window = fixed_window(time.time())
    key = keys.rate_limit("api", principal.sub, window.start)
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS + 1)
            count, _ = await pipe.execute()
    except RedisError as exc:
        logger.warning("rate limit not enforced, Redis unavailable: %s", exc)
        return
    if int(count) > limit:
        raise TooManyRequests(
            f"more than {limit} requests per minute",
            retry_after=window.retry_after,
            headers={"X-RateLimit-Limit": str(limit)},
        )
