"""Tenants: create one (the creator becomes its owner), list mine, read the current one and its members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, status
from pydantic import BaseModel, Field
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app.auth import CurrentPrincipal, principal_email
from app.db import get_sessionmaker, tenant_transaction
from app.errors import ERROR_RESPONSES, ApiError, Conflict
from app.models import Membership, Tenant
from app.tenancy import SLUG_PATTERN, AdminContext, MemberContext, Role

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
