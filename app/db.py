"""Database access as `app_user`: the tenant is set per transaction, so a pooled connection never carries it.

`set_config('app.tenant_id', …, true)` is transaction-local (the `SET LOCAL` of a bind parameter): it ends
with the transaction, and every RLS policy reads it through `app_current_tenant()`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from app.settings import get_settings

POOL_SIZE = 10
MAX_OVERFLOW = 5
POOL_TIMEOUT_SECONDS = 10

SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")


@lru_cache(maxsize=1)
def get_engine() -> AsyncEngine:
    """The backend's pool (asyncpg), created on first use."""
    return create_async_engine(
        get_settings().async_database_url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=True,
    )


@lru_cache(maxsize=1)
def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    # Responses are built after commit, so loaded attributes must stay readable.
    return async_sessionmaker(get_engine(), expire_on_commit=False)


@asynccontextmanager
async def tenant_transaction(tenant_id: uuid.UUID) -> AsyncIterator[AsyncSession]:
    """One transaction scoped to `tenant_id`: committed on success, rolled back on error."""
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(SET_TENANT, {"tenant_id": str(tenant_id)})
        yield session


@lru_cache(maxsize=1)
def get_sync_engine() -> Engine:
    """The worker's pool (psycopg, synchronous: Celery tasks are plain functions)."""
    return create_engine(get_settings().sync_database_url, pool_size=2, max_overflow=2, pool_pre_ping=True)


@contextmanager
def tenant_transaction_sync(tenant_id: uuid.UUID) -> Iterator[Session]:
    """The worker's counterpart of `tenant_transaction`."""
    with sessionmaker(get_sync_engine(), expire_on_commit=False)() as session, session.begin():
        session.execute(SET_TENANT, {"tenant_id": str(tenant_id)})
        yield session
