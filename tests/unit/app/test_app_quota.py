"""Quota arithmetic, Redis key shapes and rate-limit windows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from app import keys
from app.ai.provider import Completion, LocalProvider, count_tokens
from app.ai.quota import (
    QUOTA_KEY_TTL_SECONDS,
    Limits,
    QuotaStatus,
    Usage,
    current_period,
    live_periods,
    quota_status,
    seconds_until_next_period,
)
from app.ratelimit import fixed_window


@pytest.mark.parametrize(
    ("used", "status"),
    [
        (0, QuotaStatus.OK),
        (99, QuotaStatus.OK),
        (100, QuotaStatus.SOFT),
        (199, QuotaStatus.SOFT),
        (200, QuotaStatus.HARD),
    ],
)
def test_quota_status(used: int, status: QuotaStatus) -> None:
    assert quota_status(used, Limits(soft=100, hard=200)) is status


def test_soft_may_equal_hard() -> None:
    assert quota_status(100, Limits(soft=100, hard=100)) is QuotaStatus.HARD


@pytest.mark.parametrize(("soft", "hard"), [(2, 1), (-1, 5)])
def test_inconsistent_limits_are_refused(soft: int, hard: int) -> None:
    with pytest.raises(ValueError, match="soft"):
        Limits(soft=soft, hard=hard)


def test_limits_from_hash() -> None:
    assert Limits.from_hash({"soft": "10", "hard": "20"}) == Limits(10, 20)
    assert Limits.from_hash({}) is None
    assert Limits.from_hash({"soft": "x", "hard": "1"}) is None


def test_usage_from_hash() -> None:
    usage = Usage.from_hash({"prompt": "7", "completion": "5", "requests": "2"})
    assert (usage.total, usage.requests) == (12, 2)
    assert Usage.from_hash({}).total == 0


def test_periods_are_utc_months() -> None:
    assert current_period(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "2026-12"
    assert seconds_until_next_period(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == 60
    assert seconds_until_next_period(datetime(2026, 2, 28, 0, 0, tzinfo=UTC)) == 24 * 3600


@pytest.mark.parametrize(
    ("now", "periods"),
    [
        (datetime(2026, 12, 2, tzinfo=UTC), ["2026-12", "2026-11", "2026-10", "2026-09"]),
        (datetime(2026, 3, 31, tzinfo=UTC), ["2026-03", "2026-02", "2026-01"]),
        (datetime(2026, 1, 1, tzinfo=UTC), ["2026-01", "2025-12", "2025-11", "2025-10"]),
    ],
)
def test_live_periods_are_every_period_a_counter_may_still_exist_for(
    now: datetime, periods: list[str]
) -> None:
    """A counter expires QUOTA_KEY_TTL_SECONDS after its last write, which is before its period ended: the
    tenant deletion deletes exactly these (no SCAN)."""
    assert live_periods(now) == periods
    oldest = datetime.strptime(periods[-1], "%Y-%m").replace(tzinfo=UTC)
    before_oldest_ended = (now - oldest).total_seconds()
    assert before_oldest_ended >= QUOTA_KEY_TTL_SECONDS  # the one before it ended a lifetime ago


def test_the_quota_index_names_counters_only() -> None:
    tenant = uuid.uuid4()
    assert keys.parse_ai_quota_member(keys.ai_quota_member(tenant, "2026-11")) == (tenant, "2026-11")
    assert keys.parse_ai_quota(keys.ai_quota_index()) is None
    assert keys.parse_ai_quota_member("rollup-pending") is None
    assert keys.ai_quota_index().startswith(keys.AI_QUOTA)


def test_quota_keys_round_trip() -> None:
    tenant = uuid.uuid4()
    key = keys.ai_quota(tenant, "2026-11")
    assert key.startswith(keys.AI_QUOTA)
    assert keys.parse_ai_quota(key) == (tenant, "2026-11")
    assert keys.parse_ai_quota(keys.ai_quota_rollup_pending(tenant)) is None
    assert keys.ai_limit(tenant).startswith(keys.AI_LIMIT)
    assert keys.ai_catalog(tenant).startswith(keys.AI_CATALOG)
    assert keys.rate_limit("api", "sub", 60).startswith(keys.RATE_LIMIT)


@pytest.mark.parametrize(
    ("now", "start", "retry_after"), [(120.0, 120, 60), (179.2, 120, 1), (150.5, 120, 30)]
)
def test_fixed_window(now: float, start: int, retry_after: int) -> None:
    window = fixed_window(now)
    assert (window.start, window.retry_after) == (start, retry_after)


def test_local_provider_is_deterministic_and_bounded() -> None:
    provider = LocalProvider()

    def complete(system: str, prompt: str, max_tokens: int) -> Completion:
        return asyncio.run(provider.complete(system=system, prompt=prompt, max_tokens=max_tokens))

    first = complete("Catalog: TSHIRT", "what to buy?", 1000)
    assert first == complete("Catalog: TSHIRT", "what to buy?", 1000)
    assert first.prompt_tokens == count_tokens("Catalog: TSHIRT") + count_tokens("what to buy?")
    short = complete("word " * 500, "q", 10)
    assert short.completion_tokens <= 10
