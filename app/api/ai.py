"""AI: completions metered per tenant in `ai:quota:{tenant}:{period}` against `ai:limit:{tenant}`.

Soft limit reached → served with an `X-AI-Quota-Warning` header; hard limit reached → 429 until the next
period. The system prompt is the tenant's catalog summary, cached in `ai:catalog:{tenant}`.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, Field, model_validator

from app import keys
from app.ai.catalog_summary import catalog_summary
from app.ai.provider import get_provider
from app.ai.quota import (
    QUOTA_KEY_TTL_SECONDS,
    Limits,
    QuotaStatus,
    Usage,
    current_period,
    quota_status,
    seconds_until_next_period,
)
from app.api.tasks import enqueue
from app.errors import ERROR_RESPONSES, QuotaExceeded
from app.models import INT8_MAX, Tenant
from app.redis_client import get_redis
from app.settings import get_settings
from app.tenancy import AdminContext, MemberContext, TenantContext
from app.workers.tasks import aggregate_ai_usage

router = APIRouter(prefix="/ai", tags=["ai"], responses=ERROR_RESPONSES)

LIMIT_CACHE_SECONDS = 3600
ROLLUP_DELAY_SECONDS = 2  # usage within this window is rolled into the database by one task
WARNING_HEADER = "X-AI-Quota-Warning"


class CompletionRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=8000)
    max_tokens: int = Field(default=256, ge=1, le=4096)


class TokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class QuotaOut(BaseModel):
    period: str
    used_tokens: int
    requests: int
    soft_limit_tokens: int
    hard_limit_tokens: int
    status: QuotaStatus


class CompletionOut(BaseModel):
    text: str
    provider: str
    usage: TokenUsage
    quota: QuotaOut
    catalog_summary_cached: bool


class LimitsIn(BaseModel):
    soft_limit_tokens: int = Field(ge=0, le=INT8_MAX)
    hard_limit_tokens: int = Field(ge=0, le=INT8_MAX)

    @model_validator(mode="after")
    def _soft_below_hard(self) -> LimitsIn:
        if self.soft_limit_tokens > self.hard_limit_tokens:
            raise ValueError("soft_limit_tokens must not exceed hard_limit_tokens")
        return self


async def tenant_limits(context: TenantContext) -> Limits:
    """From `ai:limit:{tenant}`; on a miss from the tenant row (or the defaults), cached again."""
    redis = get_redis()
    key = keys.ai_limit(context.tenant_id)
    cached = Limits.from_hash(await redis.hgetall(key))
    if cached is not None:
        return cached
    settings = get_settings()
    tenant = await context.db.get(Tenant, context.tenant_id)
    hard = (tenant.ai_hard_limit_tokens if tenant else None) or settings.ai_default_hard_limit_tokens
    soft = (tenant.ai_soft_limit_tokens if tenant else None) or settings.ai_default_soft_limit_tokens
    limits = Limits(soft=min(soft, hard), hard=hard)
    await _cache_limits(context, limits)
    return limits


async def _cache_limits(context: TenantContext, limits: Limits) -> None:
    key = keys.ai_limit(context.tenant_id)
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"soft": limits.soft, "hard": limits.hard})
        pipe.expire(key, LIMIT_CACHE_SECONDS)
        await pipe.execute()


def _quota(period: str, usage: Usage, limits: Limits) -> QuotaOut:
    return QuotaOut(
        period=period,
        used_tokens=usage.total,
        requests=usage.requests,
        soft_limit_tokens=limits.soft,
        hard_limit_tokens=limits.hard,
        status=quota_status(usage.total, limits),
    )


@router.post(
    "/complete", response_model=CompletionOut, responses={429: {"description": "Hard limit reached"}}
)
async def complete(
    context: MemberContext, body: Annotated[CompletionRequest, Body()], response: Response
) -> CompletionOut:
    redis = get_redis()
    period = current_period()
    quota_key = keys.ai_quota(context.tenant_id, period)
    limits = await tenant_limits(context)
    used = Usage.from_hash(await redis.hgetall(quota_key))
    if quota_status(used.total, limits) is QuotaStatus.HARD:
        raise QuotaExceeded(
            f"the tenant used {used.total} of {limits.hard} AI tokens this period",
            retry_after=seconds_until_next_period(),
        )

    system, cached = await catalog_summary(context)
    provider = get_provider(get_settings().ai_provider)
    completion = await provider.complete(system=system, prompt=body.prompt, max_tokens=body.max_tokens)

    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(quota_key, "prompt", completion.prompt_tokens)
        pipe.hincrby(quota_key, "completion", completion.completion_tokens)
        pipe.hincrby(quota_key, "requests", 1)
        pipe.expire(quota_key, QUOTA_KEY_TTL_SECONDS)
        pipe.zadd(keys.ai_quota_index(), {keys.ai_quota_member(context.tenant_id, period): time.time()})
        prompt_total, completion_total, requests, _, _ = await pipe.execute()
    after = Usage(prompt=prompt_total, completion=completion_total, requests=requests)
    if await redis.set(keys.ai_quota_rollup_pending(context.tenant_id), "1", nx=True, ex=60):
        context.after_commit(
            lambda: enqueue(aggregate_ai_usage, context.tenant_id, countdown=ROLLUP_DELAY_SECONDS)
        )

    quota = _quota(period, after, limits)
    if quota.status is not QuotaStatus.OK:
        response.headers[WARNING_HEADER] = f"{quota.status.value}; used={after.total}; soft={limits.soft}"
    return CompletionOut(
        text=completion.text,
        provider=provider.name,
        usage=TokenUsage(
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            total_tokens=completion.prompt_tokens + completion.completion_tokens,
        ),
        quota=quota,
        catalog_summary_cached=cached,
    )


@router.get("/usage", response_model=QuotaOut)
async def usage(context: MemberContext) -> QuotaOut:
    period = current_period()
    used = Usage.from_hash(await get_redis().hgetall(keys.ai_quota(context.tenant_id, period)))
    return _quota(period, used, await tenant_limits(context))


@router.put("/limits", response_model=QuotaOut)
async def set_limits(context: AdminContext, body: Annotated[LimitsIn, Body()]) -> QuotaOut:
    tenant = await context.db.get(Tenant, context.tenant_id)
    assert tenant is not None
    tenant.ai_soft_limit_tokens = body.soft_limit_tokens
    tenant.ai_hard_limit_tokens = body.hard_limit_tokens
    limits = Limits(soft=body.soft_limit_tokens, hard=body.hard_limit_tokens)
    context.after_commit(lambda: _cache_limits(context, limits))
    period = current_period()
    used = Usage.from_hash(await get_redis().hgetall(keys.ai_quota(context.tenant_id, period)))
    return _quota(period, used, limits)
