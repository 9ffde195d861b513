"""Catalog CRUD: members read, admins write. Writes invalidate the AI catalog summary after commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.ai.catalog_summary import invalidate_catalog_summary
from app.errors import ERROR_RESPONSES, Conflict, NotFound
from app.models import INT4_MAX, CatalogItem
from app.tenancy import AdminContext, MemberContext, TenantContext

router = APIRouter(prefix="/catalog", tags=["catalog"], responses=ERROR_RESPONSES)

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"


class CatalogItemCreate(BaseModel):
    sku: str = Field(pattern=SKU_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    price_cents: int = Field(ge=0, le=INT4_MAX)
    currency: str = Field(pattern=CURRENCY_PATTERN)
    active: bool = True


class CatalogItemUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    price_cents: int | None = Field(default=None, ge=0, le=INT4_MAX)
    currency: str | None = Field(default=None, pattern=CURRENCY_PATTERN)
    active: bool | None = None


class CatalogItemOut(BaseModel):
    id: uuid.UUID
    sku: str
    name: str
    description: str
    price_cents: int
    currency: str
    active: bool
    updated_at: datetime


def _out(item: CatalogItem) -> CatalogItemOut:
    return CatalogItemOut(
        id=item.id,
        sku=item.sku,
        name=item.name,
        description=item.description,
        price_cents=item.price_cents,
        currency=item.currency,
        active=item.active,
        updated_at=item.updated_at,
    )


async def _get(context: TenantContext, item_id: uuid.UUID) -> CatalogItem:
    # RLS makes another tenant's id indistinguishable from a missing one.
    item = await context.db.get(CatalogItem, item_id)
    if item is None:
        raise NotFound("no such catalog item")
    return item


def _catalog_changed(context: TenantContext) -> None:
    context.after_commit(lambda: invalidate_catalog_summary(context))


@router.get("", response_model=list[CatalogItemOut])
async def list_items(context: MemberContext) -> list[CatalogItemOut]:
    return [_out(i) for i in await context.db.scalars(select(CatalogItem).order_by(CatalogItem.sku))]


@router.get("/{item_id}", response_model=CatalogItemOut)
async def get_item(context: MemberContext, item_id: uuid.UUID) -> CatalogItemOut:
    return _out(await _get(context, item_id))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CatalogItemOut)
async def create_item(context: AdminContext, body: Annotated[CatalogItemCreate, Body()]) -> CatalogItemOut:
    item = CatalogItem(id=uuid.uuid4(), tenant_id=context.tenant_id, **body.model_dump())
    context.db.add(item)
    try:
        await context.db.flush()
    except IntegrityError:
        raise Conflict(f"SKU {body.sku!r} already exists") from None
    await context.db.refresh(item)
    _catalog_changed(context)
    return _out(item)


@router.patch("/{item_id}", response_model=CatalogItemOut)
async def update_item(
    context: AdminContext, item_id: uuid.UUID, body: Annotated[CatalogItemUpdate, Body()]
) -> CatalogItemOut:
    item = await _get(context, item_id)
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(item, field, value)
    await context.db.flush()
    await context.db.refresh(item)
    _catalog_changed(context)
    return _out(item)


@router.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_item(context: AdminContext, item_id: uuid.UUID) -> Response:
    await context.db.delete(await _get(context, item_id))
    _catalog_changed(context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
