"""Queueing worker tasks from the backend without blocking the event loop (kombu's producer is sync)."""

from __future__ import annotations

import uuid
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from celery import Task


async def enqueue(task: Task, tenant_id: uuid.UUID, *args: Any, **options: Any) -> None:
    """Queue `task(tenant_id, *args)`; every task takes the tenant first (it runs under its RLS context)."""
    call = partial(task.apply_async, args=(str(tenant_id), *(str(a) for a in args)), **options)
    await anyio.to_thread.run_sync(call)
