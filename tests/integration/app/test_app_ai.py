"""AI usage: token counters in ai:quota, soft/hard limits from ai:limit, catalog summary cache in ai:catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import redis
from app_stack_clients import TenantUnderTest, add_catalog_item, wait_for

pytestmark = pytest.mark.integration

WARNING = "x-ai-quota-warning"


def period() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def complete(tenant: TenantUnderTest, prompt: str = "What should I buy?") -> Any:
    return tenant.api("member").post("/api/v1/ai/complete", json={"prompt": prompt})


def set_limits(tenant: TenantUnderTest, soft: int, hard: int) -> None:
    response = tenant.api("admin").put(
        "/api/v1/ai/limits", json={"soft_limit_tokens": soft, "hard_limit_tokens": hard}
    )
    assert response.status_code == 200, response.text


def test_soft_then_hard_limit(
    tenant: TenantUnderTest, redis_admin: redis.Redis, admin_db: psycopg.Connection[Any]
) -> None:
    set_limits(tenant, 10**6, 10**6)
    first = complete(tenant)
    assert first.status_code == 200, first.text
    assert WARNING not in first.headers
    used = first.json()["quota"]["used_tokens"]
    assert used == first.json()["usage"]["total_tokens"] > 0

    set_limits(tenant, soft=used + 1, hard=10**6)
    soft = complete(tenant)
    assert soft.status_code == 200
    assert soft.headers[WARNING].startswith("soft_limit_reached")
    used = soft.json()["quota"]["used_tokens"]

    set_limits(tenant, soft=used, hard=used + 1)
    last = complete(tenant)  # under the hard limit when it starts: served, and goes over
    assert last.status_code == 200
    assert last.json()["quota"]["status"] == "hard_limit_reached"
    refused = complete(tenant)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "ai_quota_exceeded"
    assert int(refused.headers["retry-after"]) > 0

    counters = redis_admin.hgetall(f"ai:quota:{tenant.id}:{period()}")
    total = int(counters["prompt"]) + int(counters["completion"])
    assert total == last.json()["quota"]["used_tokens"]
    assert counters["requests"] == "3"
    assert (
        redis_admin.zscore("ai:quota:index", f"{tenant.id}:{period()}") is not None
    )  # for the beat's roll-up
    assert redis_admin.hgetall(f"ai:limit:{tenant.id}") == {"soft": str(used), "hard": str(used + 1)}

    usage = tenant.api("member").get("/api/v1/ai/usage").json()
    assert (usage["used_tokens"], usage["status"]) == (total, "hard_limit_reached")

    def rolled_up() -> bool:
        row = admin_db.execute(
            "SELECT total_tokens, requests FROM ai_usage WHERE tenant_id = %s AND period = %s",
            (tenant.id, period()),
        ).fetchone()
        return row == (total, 3)

    wait_for(rolled_up, timeout=20, what="the worker to roll the counters into ai_usage")


def test_limits_need_admin(tenant: TenantUnderTest) -> None:
    response = tenant.api("member").put(
        "/api/v1/ai/limits", json={"soft_limit_tokens": 1, "hard_limit_tokens": 2}
    )
    assert response.status_code == 403
    bad = tenant.api("admin").put("/api/v1/ai/limits", json={"soft_limit_tokens": 3, "hard_limit_tokens": 2})
    assert bad.status_code == 422


def test_local_provider_is_deterministic(tenant: TenantUnderTest) -> None:
    add_catalog_item(tenant, "TSHIRT")
    assert (
        complete(tenant, "same question").json()["text"] == complete(tenant, "same question").json()["text"]
    )


def test_catalog_summary_cache_is_invalidated_by_catalog_changes(
    tenant: TenantUnderTest, redis_admin: redis.Redis
) -> None:
    key = f"ai:catalog:{tenant.id}"
    add_catalog_item(tenant, "TSHIRT")
    first = complete(tenant).json()
    assert first["catalog_summary_cached"] is False
    assert "TSHIRT" in first["text"]
    assert "TSHIRT" in redis_admin.get(key)
    assert complete(tenant).json()["catalog_summary_cached"] is True

    hoodie = add_catalog_item(tenant, "HOODIE")
    assert redis_admin.exists(key) == 0
    fresh = complete(tenant).json()
    assert fresh["catalog_summary_cached"] is False
    assert "HOODIE" in fresh["text"]

    assert tenant.api("admin").delete(f"/api/v1/catalog/{hoodie['id']}").status_code == 204
    assert redis_admin.exists(key) == 0
    assert "HOODIE" not in complete(tenant).json()["text"]
