"""Deleting a tenant (owner only, typed confirmation): its rows in every table, its Redis keys and every version
of its objects go; another tenant's stay untouched."""

from __future__ import annotations

from typing import Any

import boto3
import psycopg
import pytest
import redis
from app_stack_clients import TENANT_SCOPED, TenantUnderTest, add_catalog_item, wait_for

pytestmark = pytest.mark.integration


def s3_admin(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def versions_under(s3: Any, bucket: str, prefix: str) -> int:
    listing = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return len(listing.get("Versions", [])) + len(listing.get("DeleteMarkers", []))


def rows_of(admin_db: psycopg.Connection[Any], tenant_id: str) -> dict[str, int]:
    counts = {
        "tenants": admin_db.execute("SELECT count(*) FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
    }
    for table in TENANT_SCOPED:
        query = f"SELECT count(*) FROM {table} WHERE tenant_id = %s"
        counts[table] = admin_db.execute(query, (tenant_id,)).fetchone()
    return {table: row[0] if row else 0 for table, row in counts.items()}


def arrange(tenant: TenantUnderTest, s3: Any, bucket: str, redis_admin: redis.Redis) -> None:
    """Rows in several tables, two versions and a delete marker in S3, AI keys in Redis."""
    add_catalog_item(tenant, sku="MUG")
    order = tenant.api("member").post("/api/v1/orders", json={"items": [{"sku": "MUG", "qty": 1}]})
    assert order.status_code in (201, 202), order.text
    key = f"{tenant.id}/docs/report.txt"
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.delete_object(Bucket=bucket, Key=key)  # a delete marker: still a version to purge
    s3.put_object(Bucket=bucket, Key=f"{tenant.id}/logo.png", Body=b"png")
    redis_admin.hset(f"ai:limit:{tenant.id}", mapping={"soft": 1, "hard": 2})
    redis_admin.set(f"ai:catalog:{tenant.id}", "summary")
    redis_admin.hset(f"ai:quota:{tenant.id}:2026-11", mapping={"total": 5})


def test_owner_deletes_the_tenant_and_everything_it_owns(
    tenant: TenantUnderTest,
    other_tenant: TenantUnderTest,
    backend_env: dict[str, str],
    admin_db: psycopg.Connection[Any],
    redis_admin: redis.Redis,
) -> None:
    s3, bucket = s3_admin(backend_env), backend_env["S3_BUCKET"]
    for each in (tenant, other_tenant):
        arrange(each, s3, bucket, redis_admin)
    before_other = rows_of(admin_db, other_tenant.id)
    assert rows_of(admin_db, tenant.id)["orders"] == 1

    response = tenant.api("owner").request("DELETE", "/api/v1/tenant", json={"confirm": tenant.slug})
    assert response.status_code == 202, response.text
    assert response.json() == {
        "id": tenant.id,
        "slug": tenant.slug,
        "deleted": True,
        "objects": "purge queued",
    }

    assert set(rows_of(admin_db, tenant.id).values()) == {0}
    assert redis_admin.keys(f"ai:*{tenant.id}*") == []
    wait_for(
        lambda: versions_under(s3, bucket, f"{tenant.id}/") == 0, what="the worker's purge of the objects"
    )
    # nobody can act in it any more; the caller's own account still works
    assert tenant.api("member").get("/api/v1/tenant").status_code == 403
    assert tenant.owner.api.get("/api/v1/tenants").json() == []

    # the other tenant lost nothing
    assert rows_of(admin_db, other_tenant.id) == before_other
    assert versions_under(s3, bucket, f"{other_tenant.id}/") == 4
    assert len(redis_admin.keys(f"ai:*{other_tenant.id}*")) == 3


@pytest.mark.parametrize("role", ["admin", "member"])
def test_only_the_owner_may_delete(
    tenant: TenantUnderTest, role: str, admin_db: psycopg.Connection[Any]
) -> None:
    response = tenant.api(role).request("DELETE", "/api/v1/tenant", json={"confirm": tenant.slug})
    assert response.status_code == 403
    assert rows_of(admin_db, tenant.id)["tenants"] == 1


@pytest.mark.parametrize(("body", "status"), [({"confirm": "some-other-slug"}, 400), ({}, 422)])
def test_deletion_needs_the_slug_typed_again(
    tenant: TenantUnderTest, body: dict[str, str], status: int, admin_db: psycopg.Connection[Any]
) -> None:
    response = tenant.api("owner").request("DELETE", "/api/v1/tenant", json=body)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"]["code"] == "confirmation_required"
        assert tenant.slug in response.json()["error"]["message"]  # says exactly what to send
    assert rows_of(admin_db, tenant.id)["tenants"] == 1
