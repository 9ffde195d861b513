"""Row-level security as the runtime role: no tenant → nothing; tenant A never reaches tenant B's rows."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from app_stack_clients import TENANT_SCOPED, TENANT_TABLES, TenantUnderTest, add_catalog_item

from harness.testing import RunningStack

pytestmark = pytest.mark.integration


def row_for(table: str, tenant_id: str) -> dict[str, Any]:
    """A minimal valid row of `table` for `tenant_id` (tenants: the tenant itself)."""
    suffix = uuid.uuid4().hex[:8]
    common = {"id": str(uuid.uuid4()), "tenant_id": tenant_id}
    rows: dict[str, dict[str, Any]] = {
        "memberships": {"user_sub": f"sub-{suffix}", "email": f"{suffix}@rls.test", "role": "member"},
        "catalog_items": {"sku": f"SKU-{suffix}", "name": "n", "price_cents": 1, "currency": "USD"},
        "orders": {
            "user_sub": "s",
            "buyer_email": "b@rls.test",
            "items": "[]",
            "total_cents": 0,
            "currency": "USD",
        },
        "donations": {"user_sub": "s", "donor_email": "d@rls.test", "amount_cents": 1, "currency": "USD"},
        "invites": {
            "email": f"{suffix}@rls.test",
            "role": "member",
            "invited_by": "s",
            "expires_at": "2099-01-01",
        },
        "media_objects": {
            "key": f"{tenant_id}/{suffix}",
            "filename": "f",
            "content_type": "a/b",
            "uploaded_by": "s",
        },
        "ai_usage": {"period": f"19{suffix[:2].translate(str.maketrans('abcdef', '012345'))}-01"},
    }
    return common | rows[table]


def insert(connection: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    connection.execute(*insert_statement(table, row))


def set_tenant(connection: psycopg.Connection[Any], tenant_id: str) -> None:
    connection.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))


def in_tenant(connection: psycopg.Connection[Any], tenant_id: str, statement: str, params: Any = ()) -> None:
    """Run one statement in a transaction scoped to `tenant_id`, as the backend does."""
    with connection.transaction():
        set_tenant(connection, tenant_id)
        connection.execute(statement, params)


def insert_statement(table: str, row: dict[str, Any]) -> tuple[str, list[Any]]:
    columns = ", ".join(row)
    placeholders = ", ".join(["%s"] * len(row))
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(row.values())


@pytest.fixture
def rows_of_b(other_tenant: TenantUnderTest, admin_db: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    """One row per tenant-scoped table, belonging to tenant B (arranged as superuser)."""
    rows = {table: row_for(table, other_tenant.id) for table in TENANT_SCOPED}
    for table, row in rows.items():
        insert(admin_db, table, row)
    rows["tenants"] = {"id": other_tenant.id}
    return rows


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_no_tenant_set_sees_nothing(
    table: str, rows_of_b: dict[str, dict[str, Any]], app_user_db: psycopg.Connection[Any]
) -> None:
    (count,) = app_user_db.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[misc]
    assert count == 0


@pytest.mark.parametrize("table", TENANT_SCOPED)
def test_no_tenant_set_writes_nothing(
    table: str, tenant: TenantUnderTest, app_user_db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        insert(app_user_db, table, row_for(table, tenant.id))


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_other_tenants_rows_are_invisible_and_untouchable(
    table: str,
    tenant: TenantUnderTest,
    rows_of_b: dict[str, dict[str, Any]],
    app_user_db: psycopg.Connection[Any],
    admin_db: psycopg.Connection[Any],
    stack: RunningStack,
) -> None:
    row_id = rows_of_b[table]["id"]
    allow = stack.topology.postgres.roles["app_user"].privileges
    granted = set(allow.tables.get(table, ())) if allow is not None else set()
    with app_user_db.transaction():
        set_tenant(app_user_db, tenant.id)
        assert app_user_db.execute(f"SELECT 1 FROM {table} WHERE id = %s", (row_id,)).fetchall() == []
    counts = []
    for privilege, statement in (
        ("UPDATE", f"UPDATE {table} SET id = id WHERE id = %s"),
        ("DELETE", f"DELETE FROM {table} WHERE id = %s"),
    ):
        with app_user_db.transaction():
            set_tenant(app_user_db, tenant.id)
            if privilege in granted:
                counts.append(app_user_db.execute(statement, (row_id,)).rowcount)
                continue
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the allow-list gives none at all
                app_user_db.execute(statement, (row_id,))
            counts.append(0)
    touched, deleted = counts
    assert (touched, deleted) == (0, 0)
    assert admin_db.execute(f"SELECT 1 FROM {table} WHERE id = %s", (row_id,)).fetchall() == [(1,)]


@pytest.mark.parametrize("table", TENANT_SCOPED)
def test_insert_into_another_tenant_is_refused(
    table: str, tenant: TenantUnderTest, other_tenant: TenantUnderTest, app_user_db: psycopg.Connection[Any]
) -> None:
    statement, params = insert_statement(table, row_for(table, other_tenant.id))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        in_tenant(app_user_db, tenant.id, statement, params)


@pytest.mark.parametrize("table", TENANT_SCOPED)
def test_moving_a_row_to_another_tenant_is_refused(
    table: str,
    tenant: TenantUnderTest,
    other_tenant: TenantUnderTest,
    app_user_db: psycopg.Connection[Any],
    stack: RunningStack,
) -> None:
    row = row_for(table, tenant.id)
    in_tenant(app_user_db, tenant.id, *insert_statement(table, row))
    move = f"UPDATE {table} SET tenant_id = %s WHERE id = %s"
    allow = stack.topology.postgres.roles["app_user"].privileges
    may_update = allow is not None and "UPDATE" in allow.tables.get(table, ())
    refusal = "row-level security" if may_update else f"permission denied for table {table}"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal):
        in_tenant(app_user_db, tenant.id, move, (other_tenant.id, row["id"]))


def test_tenant_setting_ends_with_the_transaction(
    tenant: TenantUnderTest, app_user_db: psycopg.Connection[Any]
) -> None:
    with app_user_db.transaction():
        set_tenant(app_user_db, tenant.id)
        assert app_user_db.execute("SELECT count(*) FROM tenants").fetchone() == (1,)
    # Same connection, next transaction: the pool could hand it to another request now.
    assert app_user_db.execute("SELECT count(*) FROM tenants").fetchone() == (0,)


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE orders DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE orders NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON orders",
        "ALTER TABLE orders ADD COLUMN sneaky text",
        "SET ROLE app_migrator",
        "CREATE TABLE public.sneaky (id int)",
    ],
)
def test_runtime_role_cannot_escape(statement: str, app_user_db: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_user_db.execute(statement)


def test_row_security_off_fails_instead_of_bypassing(
    rows_of_b: dict[str, dict[str, Any]], app_user_db: psycopg.Connection[Any]
) -> None:
    app_user_db.execute("SET row_security = off")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        app_user_db.execute("SELECT * FROM orders")


def test_concurrent_requests_for_two_tenants_never_mix(
    stack: Any, tenant: TenantUnderTest, other_tenant: TenantUnderTest
) -> None:
    skus = {tenant.slug: "A-ONLY", other_tenant.slug: "B-ONLY"}
    add_catalog_item(tenant, skus[tenant.slug])
    add_catalog_item(other_tenant, skus[other_tenant.slug])
    callers = [
        (tenant.slug, tenant.member.tokens.access),
        (other_tenant.slug, other_tenant.member.tokens.access),
    ]

    async def read_catalogs() -> list[tuple[str, list[str]]]:
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:

            async def read(slug: str, token: str) -> tuple[str, list[str]]:
                response = await client.get(
                    "/api/v1/catalog", headers={"Authorization": f"Bearer {token}", "X-Tenant": slug}
                )
                assert response.status_code == 200, response.text
                return slug, [item["sku"] for item in response.json()]

            return await asyncio.gather(*(read(slug, token) for _ in range(30) for slug, token in callers))

    for slug, seen in asyncio.run(read_catalogs()):
        assert seen == [skus[slug]]
