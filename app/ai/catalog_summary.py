"""The tenant's catalog as an AI system prompt, cached in `ai:catalog:{tenant}` until the catalog changes."""

from __future__ import annotations

from sqlalchemy import select

from app import keys
from app.models import CatalogItem
from app.redis_client import get_redis
from app.settings import get_settings
from app.tenancy import TenantContext

MAX_ITEMS = 50


def render_summary(tenant_name: str, items: list[CatalogItem]) -> str:
    lines = [f"You assist customers of {tenant_name}. Catalog ({len(items)} items):"]
    lines += [f"- {item.sku}: {item.name} ({item.price_cents / 100:.2f} {item.currency})" for item in items]
    return "\n".join(lines)


async def catalog_summary(context: TenantContext) -> tuple[str, bool]:
    """(summary, served_from_cache)."""
    redis = get_redis()
    key = keys.ai_catalog(context.tenant_id)
    cached = await redis.get(key)
    if cached is not None:
        return str(cached), True
    rows = await context.db.scalars(
        select(CatalogItem).where(CatalogItem.active.is_(True)).order_by(CatalogItem.sku).limit(MAX_ITEMS)
    )
    summary = render_summary(context.name, list(rows))
    await redis.set(key, summary, ex=get_settings().ai_catalog_cache_seconds)
    return summary, False


async def invalidate_catalog_summary(context: TenantContext) -> None:
    await get_redis().delete(keys.ai_catalog(context.tenant_id))
