"""Donations: any member donates; the worker emails the receipt."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, status
from pydantic import BaseModel, Field
from sqlalchemy import select, true

from app import outbox
from app.api.catalog import CURRENCY_PATTERN
from app.api.orders import caller_email
from app.errors import ERROR_RESPONSES, NotFound
from app.models import Donation
from app.tenancy import MemberContext, TenantContext

router = APIRouter(prefix="/donations", tags=["donations"], responses=ERROR_RESPONSES)


class DonationCreate(BaseModel):
    amount_cents: int = Field(gt=0, le=100_000_000)
    currency: str = Field(pattern=CURRENCY_PATTERN)
    note: str = Field(default="", max_length=1000)


class DonationOut(BaseModel):
    id: uuid.UUID
    amount_cents: int
    currency: str
    note: str
    donor_email: str
    receipt_sent_at: datetime | None
    created_at: datetime


def _out(donation: Donation) -> DonationOut:
    return DonationOut(
        id=donation.id,
        amount_cents=donation.amount_cents,
        currency=donation.currency,
        note=donation.note,
        donor_email=donation.donor_email,
        receipt_sent_at=donation.receipt_sent_at,
        created_at=donation.created_at,
    )


def _visible_to_caller(context: TenantContext) -> Any:
    return true() if context.is_at_least("admin") else Donation.user_sub == context.principal.sub


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DonationOut)
async def donate(context: MemberContext, body: Annotated[DonationCreate, Body()]) -> DonationOut:
    donation = Donation(
        id=uuid.uuid4(),
        tenant_id=context.tenant_id,
        user_sub=context.principal.sub,
        donor_email=await caller_email(context),
        **body.model_dump(),
    )
    context.db.add(donation)
    await context.db.flush()
    await context.db.refresh(donation)
    from app.workers.tasks import send_donation_receipt  # Celery: imported on first use, not at start-up

    await outbox.intend(context, send_donation_receipt, donation.id)
    return _out(donation)


@router.get("", response_model=list[DonationOut])
async def list_donations(context: MemberContext) -> list[DonationOut]:
    rows = await context.db.scalars(
        select(Donation).where(_visible_to_caller(context)).order_by(Donation.created_at.desc()).limit(200)
    )
    return [_out(d) for d in rows]


@router.get("/{donation_id}", response_model=DonationOut)
async def get_donation(context: MemberContext, donation_id: uuid.UUID) -> DonationOut:
    donation = await context.db.scalar(
        select(Donation).where(Donation.id == donation_id, _visible_to_caller(context))
    )
    if donation is None:
        raise NotFound("no such donation")
    return _out(donation)
