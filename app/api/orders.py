"""Orders: any member orders from the catalog; the worker emails the confirmation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, status
from pydantic import BaseModel, Field
from sqlalchemy import select, true

from app import outbox
from app.errors import ERROR_RESPONSES, ApiError, NotFound
from app.models import CatalogItem, Membership, Order
from app.tenancy import MemberContext, TenantContext

router = APIRouter(prefix="/orders", tags=["orders"], responses=ERROR_RESPONSES)


class InvalidOrder(ApiError):
    status_code = 422
    code = "invalid_order"


class OrderLine(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=1000)


class OrderCreate(BaseModel):
    items: list[OrderLine] = Field(min_length=1, max_length=100)


class OrderItemOut(BaseModel):
    sku: str
    name: str
    qty: int
    unit_price_cents: int


class OrderOut(BaseModel):
    id: uuid.UUID
    status: str
    items: list[OrderItemOut]
    total_cents: int
    currency: str
    buyer_email: str
    confirmation_sent_at: datetime | None
    created_at: datetime


def _out(order: Order) -> OrderOut:
    return OrderOut(
        id=order.id,
        status=order.status,
        items=[OrderItemOut(**item) for item in order.items],
        total_cents=order.total_cents,
        currency=order.currency,
        buyer_email=order.buyer_email,
        confirmation_sent_at=order.confirmation_sent_at,
        created_at=order.created_at,
    )


async def caller_email(context: TenantContext) -> str:
    """The caller's email as recorded in their membership of this tenant."""
    email = await context.db.scalar(
        select(Membership.email).where(Membership.user_sub == context.principal.sub)
    )
    assert email is not None  # the tenant context exists only for members
    return email


def _visible_to_caller(context: TenantContext) -> Any:
    """Admins see every order of the tenant; members their own."""
    return true() if context.is_at_least("admin") else Order.user_sub == context.principal.sub


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
async def place_order(context: MemberContext, body: Annotated[OrderCreate, Body()]) -> OrderOut:
    skus = {line.sku for line in body.items}
    catalog = {
        item.sku: item
        for item in await context.db.scalars(
            select(CatalogItem).where(CatalogItem.sku.in_(skus), CatalogItem.active.is_(True))
        )
    }
    if missing := sorted(skus - catalog.keys()):
        raise InvalidOrder(f"unknown or inactive SKU(s): {', '.join(missing)}")
    currencies = {item.currency for item in catalog.values()}
    if len(currencies) != 1:
        raise InvalidOrder("all items of an order must share one currency")
    items: list[dict[str, Any]] = [
        {
            "sku": line.sku,
            "name": catalog[line.sku].name,
            "qty": line.qty,
            "unit_price_cents": catalog[line.sku].price_cents,
        }
        for line in body.items
    ]
    order = Order(
        id=uuid.uuid4(),
        tenant_id=context.tenant_id,
        user_sub=context.principal.sub,
        buyer_email=await caller_email(context),
        status="placed",
        items=items,
        total_cents=sum(i["qty"] * i["unit_price_cents"] for i in items),
        currency=currencies.pop(),
    )
    context.db.add(order)
    await context.db.flush()
    await context.db.refresh(order)
    from app.workers.tasks import send_order_confirmation  # Celery: imported on first use, not at start-up

    await outbox.intend(context, send_order_confirmation, order.id)
    return _out(order)


@router.get("", response_model=list[OrderOut])
async def list_orders(context: MemberContext) -> list[OrderOut]:
    rows = await context.db.scalars(
        select(Order).where(_visible_to_caller(context)).order_by(Order.created_at.desc()).limit(200)
    )
    return [_out(o) for o in rows]


@router.get("/{order_id}", response_model=OrderOut)
async def get_order(context: MemberContext, order_id: uuid.UUID) -> OrderOut:
    order = await context.db.scalar(select(Order).where(Order.id == order_id, _visible_to_caller(context)))
    if order is None:
        raise NotFound("no such order")
    return _out(order)
