"""Tenant resolution (subdomain or X-Tenant), membership, and role checks."""

from __future__ import annotations

from typing import Any

import pytest
from app_stack_clients import ApiClient, TenantUnderTest, User, add_catalog_item, unique

pytestmark = pytest.mark.integration


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_creator_becomes_owner(make_user: Any) -> None:
    owner: User = make_user("creator-")
    slug = unique("t-")
    created = owner.api.post("/api/v1/tenants", json={"slug": slug, "name": "Creator Co"})
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "owner"
    mine = owner.api.get("/api/v1/tenants").json()
    assert [(t["slug"], t["role"]) for t in mine] == [(slug, "owner")]
    assert owner.api.as_tenant(slug).get("/api/v1/tenant").json()["role"] == "owner"


def test_taken_slug_conflicts(tenant: TenantUnderTest, make_user: Any) -> None:
    response = make_user().api.post("/api/v1/tenants", json={"slug": tenant.slug, "name": "Copycat"})
    assert response.status_code == 409
    assert error_code(response) == "conflict"


@pytest.mark.parametrize("slug", ["UPPER", "-dash", "a_b", "x" * 64])
def test_invalid_slug_is_rejected(make_user: Any, slug: str) -> None:
    response = make_user().api.post("/api/v1/tenants", json={"slug": slug, "name": "Bad"})
    assert response.status_code == 422
    assert error_code(response) == "validation_error"


def test_tenant_from_subdomain(stack: Any, tenant: TenantUnderTest) -> None:
    api = ApiClient(stack.api_url, tenant.member.tokens.access)
    response = api.get("/api/v1/tenant", headers={"Host": f"{tenant.slug}.localhost:8000"})
    assert response.status_code == 200, response.text
    assert response.json()["slug"] == tenant.slug


def test_subdomain_and_header_must_agree(
    stack: Any, tenant: TenantUnderTest, other_tenant: TenantUnderTest
) -> None:
    api = ApiClient(stack.api_url, tenant.member.tokens.access, tenant.slug)
    response = api.get("/api/v1/tenant", headers={"Host": f"{other_tenant.slug}.localhost"})
    assert response.status_code == 400
    assert error_code(response) == "tenant_required"


def test_no_tenant_named(tenant: TenantUnderTest) -> None:
    response = tenant.member.api.get("/api/v1/catalog")
    assert response.status_code == 400
    assert error_code(response) == "tenant_required"


def test_non_member_is_forbidden(tenant: TenantUnderTest, other_tenant: TenantUnderTest) -> None:
    response = other_tenant.owner.api.as_tenant(tenant.slug).get("/api/v1/catalog")
    assert response.status_code == 403
    assert error_code(response) == "forbidden"


def test_unknown_tenant_looks_like_a_foreign_one(tenant: TenantUnderTest) -> None:
    response = tenant.owner.api.as_tenant(unique("nope-")).get("/api/v1/catalog")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("member", False), ("admin", True), ("owner", True)],
)
def test_catalog_writes_need_admin(tenant: TenantUnderTest, role: str, allowed: bool) -> None:
    response = tenant.api(role).post(
        "/api/v1/catalog", json={"sku": unique("SKU-"), "name": "x", "price_cents": 1, "currency": "USD"}
    )
    assert response.status_code == (201 if allowed else 403), response.text


def test_members_list_needs_admin(tenant: TenantUnderTest) -> None:
    assert tenant.api("member").get("/api/v1/tenant/members").status_code == 403
    members = tenant.api("admin").get("/api/v1/tenant/members").json()
    assert sorted(m["role"] for m in members) == ["admin", "member", "owner"]


def test_admin_cannot_invite_an_owner(tenant: TenantUnderTest) -> None:
    response = tenant.api("admin").post("/api/v1/invites", json={"email": "boss@it.test", "role": "owner"})
    assert response.status_code == 403


def test_catalog_crud_and_cross_tenant_ids(tenant: TenantUnderTest, other_tenant: TenantUnderTest) -> None:
    item = add_catalog_item(tenant, "MUG", 1400)
    admin = tenant.api("admin")
    updated = admin.patch(f"/api/v1/catalog/{item['id']}", json={"price_cents": 1500})
    assert updated.status_code == 200
    assert updated.json()["price_cents"] == 1500
    assert admin.post("/api/v1/catalog", json={**item, "id": None}).status_code == 409

    intruder = other_tenant.api("owner")
    assert intruder.get(f"/api/v1/catalog/{item['id']}").status_code == 404
    assert intruder.patch(f"/api/v1/catalog/{item['id']}", json={"price_cents": 1}).status_code == 404
    assert intruder.delete(f"/api/v1/catalog/{item['id']}").status_code == 404
    assert admin.get(f"/api/v1/catalog/{item['id']}").json()["price_cents"] == 1500

    assert admin.delete(f"/api/v1/catalog/{item['id']}").status_code == 204
    assert admin.get(f"/api/v1/catalog/{item['id']}").status_code == 404
