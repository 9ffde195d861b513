"""Rate limiting in rl:*: past the per-minute limit a caller gets 429 with Retry-After; others do not."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from app_stack_clients import User

pytestmark = pytest.mark.integration

MAX_REQUESTS = 5000  # bound on the loop whatever the configured limit (default 600 per minute)


def test_429_with_retry_after(make_user: Any, redis_admin: redis.Redis) -> None:
    caller: User = make_user("busy-")
    bystander: User = make_user("calm-")
    for _ in range(MAX_REQUESTS):
        response = caller.api.get("/api/v1/tenants")
        if response.status_code != 200:
            break
    else:
        pytest.fail(f"no 429 after {MAX_REQUESTS} requests")

    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert int(response.headers["x-ratelimit-limit"]) > 0
    assert list(redis_admin.scan_iter(match=f"rl:*{caller.sub}*"))
    assert bystander.api.get("/api/v1/tenants").status_code == 200
