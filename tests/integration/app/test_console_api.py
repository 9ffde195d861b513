"""The web console's JSON API on the session stack: what each page shows, read from the real components."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import redis
from app_stack_clients import Inbox, TenantUnderTest, add_catalog_item, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def console(stack: Any) -> httpx.Client:
    endpoint = stack.runner.components()["console"].endpoint
    return httpx.Client(base_url=endpoint, timeout=60)


def get(console: httpx.Client, path: str, **params: Any) -> Any:
    response = console.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()


def test_status_lists_the_console_with_its_url(stack: Any, console: httpx.Client) -> None:
    rows = {row.name: row for row in stack.runner.status()}
    assert rows["console"].healthy
    assert rows["console"].endpoint == str(console.base_url).rstrip("/")
    assert rows["console"].endpoint.startswith("http://127.0.0.1:")


def test_the_console_runs_below_the_components_up_waits_for(stack: Any) -> None:
    """It starts with everything else but never competes with them for the CPU (`up` waits for those)."""
    import psutil

    from harness.process import read_pidfile
    from harness.webconsole.__main__ import NICENESS

    record = read_pidfile(stack.runner.state.pid_file("console"))
    assert record is not None
    console_nice = psutil.Process(record.pid).nice()
    assert console_nice >= psutil.Process().nice() + NICENESS or console_nice == 19


def test_overview_names_the_env_contract_without_a_value(stack: Any, console: httpx.Client) -> None:
    overview = console.get("/api/overview").text
    env = stack.env("backend")
    assert "DATABASE_URL" in overview and "COGNITO_CLIENT_SECRET" in overview
    for name in ("DATABASE_URL", "COGNITO_CLIENT_SECRET", "APP_SECRET_KEY", "REDIS_URL"):
        assert env[name] not in overview, f"{name}'s value is in the overview"
    page = console.get("/").text
    assert all(env[name] not in page for name in ("COGNITO_CLIENT_SECRET", "APP_SECRET_KEY"))


def test_order_mail_row_and_task_as_the_tenant_sees_them(
    tenant: TenantUnderTest, other_tenant: TenantUnderTest, inbox: Inbox, console: httpx.Client
) -> None:
    add_catalog_item(tenant, "MUG", 1400)
    order = tenant.api("member").post("/api/v1/orders", json={"items": [{"sku": "MUG", "qty": 2}]}).json()
    inbox.wait_for(tenant.member.email, f"Order {order['id']}")

    mine = get(console, "/api/mail", tenant=tenant.slug)
    assert [m["subject"] for m in mine if order["id"] in m["subject"]]
    assert not [m for m in get(console, "/api/mail", tenant=other_tenant.slug) if order["id"] in m["subject"]]
    newest = get(console, "/api/mail", to=tenant.member.email)[0]
    message = get(console, f"/api/mail/{newest['id']}")
    assert order["id"] in message["ids"] and order["id"] in message["text"]

    rows = get(console, "/api/data/orders", tenant=tenant.slug, id=order["id"])
    assert [r["id"] for r in rows] == [order["id"]]
    assert get(console, "/api/data/orders", tenant=other_tenant.slug, id=order["id"]) == []  # RLS
    assert get(console, f"/api/find/{order['id']}") == [
        {"tenant": tenant.slug, "table": "orders", "id": order["id"]}
    ]

    def task_done() -> list[dict[str, Any]]:
        return [
            t
            for t in get(console, "/api/tasks")
            if t["name"] == "emails.order_confirmation" and order["id"] in str(t)
        ]

    (task,) = wait_for(task_done, what="the order's confirmation task in /api/tasks", timeout=20)
    assert task["tenant_id"] == tenant.id and task["state"] == "success"


def test_objects_show_versions_delete_markers_and_a_presigned_download(
    stack: Any, tenant: TenantUnderTest, console: httpx.Client
) -> None:
    s3 = stack.client("s3")
    bucket = stack.env("backend")["S3_BUCKET"]
    key = f"{tenant.id}/notes/{uuid.uuid4().hex}.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"first", ContentType="text/plain")
    s3.put_object(Bucket=bucket, Key=key, Body=b"second!", ContentType="text/markdown")
    s3.delete_object(Bucket=bucket, Key=key)
    versions = [o for o in get(console, "/api/objects", tenant=tenant.slug) if o["key"] == key]
    assert [(o["delete_marker"], o["size"], o["content_type"]) for o in versions] == [
        (True, None, None),
        (False, 7, "text/markdown"),
        (False, 5, "text/plain"),
    ]
    assert versions[0]["is_latest"]
    download = httpx.get(versions[1]["download"], timeout=30)
    assert download.status_code == 200 and download.content == b"second!"


def test_redis_flags_keys_outside_every_namespace(stack: Any, console: httpx.Client) -> None:
    client = redis.Redis.from_url(stack.redis_admin_url)
    stray = f"stray:{uuid.uuid4().hex}"
    client.set(stray, "x", ex=120)
    try:
        keys = {k["key"]: k for k in get(console, "/api/redis")}
        assert keys[stray]["namespace"] is None and keys[stray]["type"] == "string"
        assert 0 < keys[stray]["ttl"] <= 120
        assert all(k["key"].startswith("celery:") for k in get(console, "/api/redis", prefix="celery:"))
    finally:
        client.delete(stray)


def test_identity_lists_users_with_groups_and_tenants(tenant: TenantUnderTest, console: httpx.Client) -> None:
    users = {u["email"]: u for u in get(console, "/api/identity/users")}
    assert users[tenant.owner.email]["tenants"] == [tenant.slug]
    seeded = users["olivia.owner@acme.test"]  # seed/seed.yaml
    assert seeded["groups"] == ["Owner"] and "acme" in seeded["tenants"]
    assert seeded["status"] == "CONFIRMED" and seeded["mfa"] == []


def test_client_mistakes_are_4xx(console: httpx.Client, tenant: TenantUnderTest) -> None:
    assert console.get("/api/data/pg_authid", params={"tenant": tenant.slug}).status_code == 404
    assert console.get("/api/data/orders", params={"tenant": "no-such-tenant"}).status_code == 404
    assert console.get("/api/data/orders").status_code == 422
    assert console.get("/api/redis", params={"prefix": "nope:"}).status_code == 404
    assert console.get("/api/mail/zzzzzzzz").status_code == 404
    assert console.post("/api/mail/clear").status_code == 403
