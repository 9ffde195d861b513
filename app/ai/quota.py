"""Quota arithmetic (pure): periods, usage counters and the soft/hard limit decision."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class QuotaStatus(enum.StrEnum):
    OK = "ok"
    SOFT = "soft_limit_reached"  # served, with a warning header
    HARD = "hard_limit_reached"  # refused with 429 until the next period


@dataclass(frozen=True)
class Limits:
    soft: int
    hard: int

    def __post_init__(self) -> None:
        if not 0 <= self.soft <= self.hard:
            raise ValueError(f"need 0 <= soft ({self.soft}) <= hard ({self.hard})")

    @classmethod
    def from_hash(cls, values: Mapping[Any, Any]) -> Limits | None:
        try:
            return cls(soft=int(values["soft"]), hard=int(values["hard"]))
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class Usage:
    prompt: int = 0
    completion: int = 0
    requests: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    @classmethod
    def from_hash(cls, values: Mapping[Any, Any]) -> Usage:
        """From an `ai:quota:*` hash (missing fields count as zero)."""
        return cls(
            prompt=int(values.get("prompt", 0)),
            completion=int(values.get("completion", 0)),
            requests=int(values.get("requests", 0)),
        )


def quota_status(used_tokens: int, limits: Limits) -> QuotaStatus:
    if used_tokens >= limits.hard:
        return QuotaStatus.HARD
    if used_tokens >= limits.soft:
        return QuotaStatus.SOFT
    return QuotaStatus.OK


QUOTA_KEY_TTL_SECONDS = 70 * 24 * 3600  # a period plus the next one, for late rollups


def live_periods(now: datetime | None = None, ttl_seconds: int = QUOTA_KEY_TTL_SECONDS) -> list[str]:
    """Every period whose counters may still exist: the current one and those that ended less than
    `ttl_seconds` ago (a counter expires `ttl_seconds` after its last write), newest first."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    year, month = now.year, now.month
    periods = []
    while True:
        periods.append(f"{year:04d}-{month:02d}")
        # the period before ends where this one starts
        start = datetime(year, month, 1, tzinfo=UTC)
        if (now - start).total_seconds() >= ttl_seconds:
            return periods
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)


def current_period(now: datetime | None = None) -> str:
    """Quota periods are calendar months in UTC: `YYYY-MM`."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m")


def seconds_until_next_period(now: datetime | None = None) -> int:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    start = datetime(year, month, 1, tzinfo=UTC)
    return max(1, int((start - now).total_seconds()))
