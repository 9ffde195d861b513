"""Invites: admins invite by email (the worker sends it); the invitee accepts with the emailed token."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import invite_tokens, outbox
from app.auth import CurrentPrincipal, principal_email
from app.db import tenant_transaction
from app.errors import ERROR_RESPONSES, Conflict, Forbidden, NotFound
from app.models import Invite, Membership, Tenant
from app.tenancy import AdminContext, Role, role_allows

router = APIRouter(tags=["invites"], responses=ERROR_RESPONSES)

INVITE_VALIDITY = timedelta(days=7)
# Shape only: deliverability is SES's business (and .test addresses must pass locally).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class InviteCreate(BaseModel):
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    role: Role = "member"


class InviteOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    status: str
    expires_at: datetime
    sent_at: datetime | None


class InviteAccept(BaseModel):
    token: str = Field(min_length=10, max_length=4096, description="The token from the invite email")


class AcceptedMembership(BaseModel):
    tenant_id: uuid.UUID
    slug: str
    role: Role


def _out(invite: Invite) -> InviteOut:
    return InviteOut(
        id=invite.id,
        email=invite.email,
        role=invite.role,
        status=invite.status,
        expires_at=invite.expires_at,
        sent_at=invite.sent_at,
    )


@router.post("/invites", status_code=status.HTTP_201_CREATED, response_model=InviteOut)
async def create_invite(context: AdminContext, body: Annotated[InviteCreate, Body()]) -> InviteOut:
    if not role_allows(context.role, body.role):
        raise Forbidden(f"a {context.role} cannot invite an {body.role}")
    invite = Invite(
        id=uuid.uuid4(),
        tenant_id=context.tenant_id,
        email=str(body.email).lower(),
        role=body.role,
        status="pending",
        invited_by=context.principal.sub,
        expires_at=datetime.now(UTC) + INVITE_VALIDITY,
    )
    context.db.add(invite)
    await context.db.flush()
    from app.workers.tasks import send_invite  # Celery: imported on first use, not at start-up

    await outbox.intend(context, send_invite, invite.id)
    return _out(invite)


@router.get("/invites", response_model=list[InviteOut])
async def list_invites(context: AdminContext) -> list[InviteOut]:
    return [_out(i) for i in await context.db.scalars(select(Invite).order_by(Invite.created_at))]


@router.delete("/invites/{invite_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invite(context: AdminContext, invite_id: uuid.UUID) -> Response:
    invite = await context.db.get(Invite, invite_id)
    if invite is None:
        raise NotFound("no such invite")
    if invite.status == "pending":
        invite.status = "revoked"
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invites/accept", response_model=AcceptedMembership)
async def accept_invite(
    principal: CurrentPrincipal, body: Annotated[InviteAccept, Body()]
) -> AcceptedMembership:
    """Join the invite's tenant. The token names the tenant, so no tenant header is needed."""
    claims = invite_tokens.read(body.token)
    email = await principal_email(principal)
    async with tenant_transaction(claims.tenant_id) as db:
        invite = await db.scalar(select(Invite).where(Invite.id == claims.invite_id).with_for_update())
        if invite is None or invite.status != "pending" or invite.expires_at <= datetime.now(UTC):
            raise invite_tokens.InvalidInvite("the invite is no longer valid")
        if email is None or email != invite.email:
            raise Forbidden("the invite was sent to another email address")
        tenant = await db.get(Tenant, claims.tenant_id)
        assert tenant is not None
        db.add(Membership(tenant_id=tenant.id, user_sub=principal.sub, email=email, role=invite.role))
        invite.status = "accepted"
        invite.accepted_by = principal.sub
        invite.accepted_at = datetime.now(UTC)
        try:
            await db.flush()
        except IntegrityError:
            raise Conflict(f"already a member of {tenant.slug!r}") from None
    return AcceptedMembership(tenant_id=tenant.id, slug=tenant.slug, role=invite.role)
