"""Tenants: create one (the creator becomes its owner), list mine, read the current one and its members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, status
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from app import keys, outbox
from app.ai.quota import live_periods
from app.auth import CurrentPrincipal, principal_email
from app.db import get_sessionmaker, tenant_transaction
from app.errors import ERROR_RESPONSES, ApiError, Conflict
from app.models import Membership, Tenant
from app.redis_client import get_redis
from app.tenancy import SLUG_PATTERN, AdminContext, MemberContext, OwnerContext, Role, TenantContext
from app.workers.tasks import purge_tenant_objects

router = APIRouter(tags=["tenants"], responses=ERROR_RESPONSES)

MEMBERSHIPS_OF = text("SELECT tenant_id, tenant_slug, tenant_name, role FROM app_memberships_of(:sub)")


class TenantCreate(BaseModel):
    slug: str = Field(pattern=SLUG_PATTERN.pattern, description="Subdomain label: `{slug}.yourdomain.com`")
    name: str = Field(min_length=1, max_length=200)


class TenantMembership(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    role: Role


class Member(BaseModel):
    user_sub: str
    email: str
    role: Role
    created_at: datetime


class EmailRequired(ApiError):
    code = "email_required"


class ConfirmationRequired(ApiError):
    code = "confirmation_required"


class TenantDelete(BaseModel):
    confirm: str = Field(description="The tenant's slug, typed again: deleting a tenant cannot be undone")


class TenantDeleted(BaseModel):
    id: uuid.UUID
    slug: str
    deleted: bool = True
    objects: str = Field(
        description="`purge queued`: the worker deletes every object version under the prefix"
    )


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantMembership)
async def create_tenant(
    principal: CurrentPrincipal, body: Annotated[TenantCreate, Body()]
) -> TenantMembership:
    email = await principal_email(principal)
    if email is None:
        raise EmailRequired("the account has no email address to attach to the membership")
    tenant_id = uuid.uuid4()
    try:
        # The new tenant's own RLS context: the policies admit exactly these rows.
        async with tenant_transaction(tenant_id) as db:
            db.add(Tenant(id=tenant_id, slug=body.slug, name=body.name))
            await db.flush()
            db.add(Membership(tenant_id=tenant_id, user_sub=principal.sub, email=email, role="owner"))
    except IntegrityError:
        raise Conflict(f"tenant slug {body.slug!r} is taken") from None
    return TenantMembership(id=tenant_id, slug=body.slug, name=body.name, role="owner")


@router.get("/tenants", response_model=list[TenantMembership])
async def my_tenants(principal: CurrentPrincipal) -> list[TenantMembership]:
    """Every tenant the caller is a member of (needs no tenant context)."""
    async with get_sessionmaker()() as db:
        rows = (await db.execute(MEMBERSHIPS_OF, {"sub": principal.sub})).all()
    return [
        TenantMembership(id=r.tenant_id, slug=r.tenant_slug, name=r.tenant_name, role=r.role) for r in rows
    ]


@router.get("/tenant", response_model=TenantMembership)
async def current_tenant(context: MemberContext) -> TenantMembership:
    return TenantMembership(id=context.tenant_id, slug=context.slug, name=context.name, role=context.role)


@router.get("/tenant/members", response_model=list[Member])
async def members(context: AdminContext) -> list[Member]:
    rows = await context.db.scalars(select(Membership).order_by(Membership.created_at))
    return [Member(user_sub=m.user_sub, email=m.email, role=m.role, created_at=m.created_at) for m in rows]


@router.delete("/tenant", status_code=status.HTTP_202_ACCEPTED, response_model=TenantDeleted)
async def delete_tenant(context: OwnerContext, body: Annotated[TenantDelete, Body()]) -> TenantDeleted:
    """Delete the current tenant (owner only): its rows now, its Redis keys and stored objects after commit.

    Every tenant table cascades from `tenants`; the delete runs as app_user under the tenant's own RLS
    context, so it cannot reach another tenant. Cognito users stay (they may belong to other tenants).
    """
    if body.confirm.strip().lower() != context.slug:
        raise ConfirmationRequired(f'to delete tenant {context.slug!r}, send {{"confirm": "{context.slug}"}}')
    await context.db.execute(delete(Tenant).where(Tenant.id == context.tenant_id))
    context.after_commit(lambda: _forget_tenant_keys(context))
    # The purge's subject is the tenant itself; the intent commits with the deletion.
    await outbox.intend(context, purge_tenant_objects, context.tenant_id)
    return TenantDeleted(id=context.tenant_id, slug=context.slug, objects="purge queued")


async def _forget_tenant_keys(context: TenantContext) -> None:
    """The tenant's AI counters, limits and cached summary (rate-limit keys are per caller and expire).

    Its counters are named, not scanned for: one per period that may still hold one (SCAN is not on the
    backend's Redis allow-list — it lists every namespace's keys)."""
    tid = context.tenant_id
    periods = live_periods()
    doomed = [keys.ai_limit(tid), keys.ai_catalog(tid), keys.ai_quota_rollup_pending(tid)]
    doomed += [keys.ai_quota(tid, period) for period in periods]
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.delete(*doomed)
        pipe.zrem(keys.ai_quota_index(), *(keys.ai_quota_member(tid, period) for period in periods))
        await pipe.execute()
