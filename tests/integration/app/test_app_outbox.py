"""The transactional outbox: every email intent commits with its row, the task stamps it done, and the
worker's relay queues again an intent whose publish was lost (Redis down, backend killed after commit)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from app_stack_clients import Inbox, TenantUnderTest, add_catalog_item, wait_for

pytestmark = pytest.mark.integration


def _intent(admin_db: psycopg.Connection[Any], subject_id: str) -> dict[str, Any] | None:
    row = admin_db.execute(
        "SELECT tenant_id::text, task, publish_count, done_at IS NOT NULL FROM outbox WHERE subject_id = %s",
        (subject_id,),
    ).fetchone()
    if row is None:
        return None
    return {"tenant_id": row[0], "task": row[1], "publish_count": row[2], "done": row[3]}


def test_order_commits_its_intent_and_the_task_stamps_it_done(
    tenant: TenantUnderTest, admin_db: psycopg.Connection[Any], inbox: Inbox
) -> None:
    add_catalog_item(tenant, "BOOK", 1200)
    order = tenant.api("member").post("/api/v1/orders", json={"items": [{"sku": "BOOK", "qty": 1}]}).json()
    intent = _intent(admin_db, order["id"])
    assert intent is not None, "the order committed without its outbox intent"
    assert intent["tenant_id"] == tenant.id
    assert intent["task"] == "emails.order_confirmation"
    inbox.wait_for(tenant.member.email, f"Order {order['id']}")
    done = wait_for(lambda: (i := _intent(admin_db, order["id"])) and i["done"] and i, what="done_at stamped")
    assert done["publish_count"] == 1  # the fast path queued it; the relay had nothing to do


def test_relay_queues_an_intent_whose_publish_was_lost(
    tenant: TenantUnderTest, admin_db: psycopg.Connection[Any], inbox: Inbox
) -> None:
    """An order and its intent committed, but the task never reached the broker: the relay sends it."""
    order_id = str(uuid.uuid4())
    items = [{"sku": "LOST", "name": "Lost publish", "qty": 1, "unit_price_cents": 700}]
    with admin_db.transaction():
        admin_db.execute(
            "INSERT INTO orders (id, tenant_id, user_sub, buyer_email, status, items, total_cents, currency)"
            " VALUES (%s, %s, %s, %s, 'placed', %s, 700, 'USD')",
            (order_id, tenant.id, tenant.member.sub, tenant.member.email, json.dumps(items)),
        )
        admin_db.execute(
            "INSERT INTO outbox (id, tenant_id, task, subject_id, published_at)"
            " VALUES (%s, %s, 'emails.order_confirmation', %s, now() - interval '1 hour')",
            (str(uuid.uuid4()), tenant.id, order_id),
        )
    inbox.wait_for(tenant.member.email, f"Order {order_id}", timeout=30)
    done = wait_for(lambda: (i := _intent(admin_db, order_id)) and i["done"] and i, what="done_at stamped")
    assert done["publish_count"] == 2  # queued once more, by the relay
    assert len(inbox.to(tenant.member.email, f"Order {order_id}")) == 1


def test_runtime_role_sees_only_its_tenants_intents_and_never_deletes(
    tenant: TenantUnderTest, other_tenant: TenantUnderTest, app_user_db: psycopg.Connection[Any]
) -> None:
    tenant.api("member").post("/api/v1/donations", json={"amount_cents": 500, "currency": "USD"})
    other_tenant.api("member").post("/api/v1/donations", json={"amount_cents": 600, "currency": "USD"})
    with app_user_db.transaction():
        app_user_db.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant.id,))
        tenants = {r[0] for r in app_user_db.execute("SELECT tenant_id::text FROM outbox").fetchall()}
    assert tenants == {tenant.id}
    assert app_user_db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)  # no tenant: no rows
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_user_db.execute("DELETE FROM outbox")
