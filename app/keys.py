"""Every Redis key the app writes, built in one place (namespaces from topology.toml's [[redis.namespaces]]).

The ACL user of each component may touch only its namespaces, so a key built anywhere else would fail
at runtime with NOPERM.
"""

from __future__ import annotations

import re
import uuid

AI_QUOTA = "ai:quota:"
AI_LIMIT = "ai:limit:"
AI_CATALOG = "ai:catalog:"
RATE_LIMIT = "rl:"
CELERY = "celery:"  # Celery's global key prefix (broker, results, pub/sub channels)

_QUOTA_KEY = re.compile(rf"^{AI_QUOTA}(?P<tenant>[0-9a-f-]{{36}}):(?P<period>\d{{4}}-\d{{2}})$")


def email_delivery(idempotency_key: str) -> str:
    """What the worker knows about an email the database could not record: `sent:<SES message id>` (SES
    accepted it, the commit that stamps the row failed) or `maybe` (SES did not answer). Celery's namespace:
    it is the worker's delivery bookkeeping, beside its queues."""
    return f"{CELERY}email:{idempotency_key}"


def ai_quota(tenant_id: uuid.UUID, period: str) -> str:
    """Hash of token counters (`prompt`, `completion`, `total`, `requests`) for one tenant and period."""
    return f"{AI_QUOTA}{tenant_id}:{period}"


def ai_quota_index() -> str:
    """Sorted set of every `ai_quota` counter that may exist: member `{tenant}:{period}`, score the time of
    its last write. The worker's roll-up reads it instead of scanning: no component user may run SCAN or
    KEYS (they list every namespace's keys; topology.toml's [redis.acl.*] allow-lists)."""
    return f"{AI_QUOTA}index"


def ai_quota_member(tenant_id: uuid.UUID, period: str) -> str:
    return f"{tenant_id}:{period}"


def parse_ai_quota_member(member: str) -> tuple[uuid.UUID, str] | None:
    """(tenant_id, period) of an `ai_quota_index` member; None for anything else."""
    return parse_ai_quota(f"{AI_QUOTA}{member}")


def ai_quota_rollup_pending(tenant_id: uuid.UUID) -> str:
    """Set while a rollup of the tenant's counters into `ai_usage` is queued (debounces the task)."""
    return f"{AI_QUOTA}{tenant_id}:rollup-pending"


def parse_ai_quota(key: str) -> tuple[uuid.UUID, str] | None:
    """(tenant_id, period) of an `ai_quota` key; None for any other key."""
    match = _QUOTA_KEY.match(key)
    if match is None:
        return None
    return uuid.UUID(match["tenant"]), match["period"]


def ai_limit(tenant_id: uuid.UUID) -> str:
    """Hash with `soft` and `hard` token limits per period."""
    return f"{AI_LIMIT}{tenant_id}"


def ai_catalog(tenant_id: uuid.UUID) -> str:
    """The cached catalog summary used as the AI system prompt."""
    return f"{AI_CATALOG}{tenant_id}"


def rate_limit(scope: str, identity: str, window_start: int) -> str:
    return f"{RATE_LIMIT}{scope}:{identity}:{window_start}"
