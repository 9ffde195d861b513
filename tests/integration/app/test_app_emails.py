"""Orders, donations and invites: the worker's email reaches the SES emulator, once, with the right content."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from app_stack_clients import Inbox, TenantUnderTest, User, add_catalog_item, wait_for

pytestmark = pytest.mark.integration


def test_order_confirmation_email(
    tenant: TenantUnderTest, other_tenant: TenantUnderTest, inbox: Inbox, backend_env: dict[str, str]
) -> None:
    add_catalog_item(tenant, "TSHIRT", 2500)
    add_catalog_item(tenant, "MUG", 1400)
    buyer = tenant.api("member")
    response = buyer.post(
        "/api/v1/orders", json={"items": [{"sku": "TSHIRT", "qty": 2}, {"sku": "MUG", "qty": 1}]}
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["total_cents"] == 2 * 2500 + 1400
    assert order["buyer_email"] == tenant.member.email

    mail = inbox.wait_for(tenant.member.email, f"Order {order['id']}")
    assert mail.source == backend_env["SES_SENDER"]
    assert "2 x Item TSHIRT (TSHIRT)" in mail.body
    assert "Total: 64.00 USD" in mail.body

    stamped = wait_for(
        lambda: buyer.get(f"/api/v1/orders/{order['id']}").json()["confirmation_sent_at"],
        what="the order to be stamped as confirmed",
    )
    assert stamped
    assert len(inbox.to(tenant.member.email, f"Order {order['id']}")) == 1

    assert other_tenant.api("owner").get(f"/api/v1/orders/{order['id']}").status_code == 404


def test_orders_are_private_to_buyer_unless_admin(tenant: TenantUnderTest) -> None:
    add_catalog_item(tenant, "CAP", 1900)
    order = tenant.api("member").post("/api/v1/orders", json={"items": [{"sku": "CAP", "qty": 1}]}).json()
    assert [o["id"] for o in tenant.api("admin").get("/api/v1/orders").json()] == [order["id"]]
    assert tenant.api("owner").get(f"/api/v1/orders/{order['id']}").status_code == 200
    own = tenant.api("admin").post("/api/v1/orders", json={"items": [{"sku": "CAP", "qty": 1}]}).json()
    assert [o["id"] for o in tenant.api("member").get("/api/v1/orders").json()] == [order["id"]]
    assert tenant.api("member").get(f"/api/v1/orders/{own['id']}").status_code == 404


def test_order_with_unknown_sku_is_refused(tenant: TenantUnderTest, other_tenant: TenantUnderTest) -> None:
    add_catalog_item(other_tenant, "THEIRS")  # exists, but in the other tenant
    response = tenant.api("member").post("/api/v1/orders", json={"items": [{"sku": "THEIRS", "qty": 1}]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_order"


def test_donation_receipt_email(tenant: TenantUnderTest, other_tenant: TenantUnderTest, inbox: Inbox) -> None:
    response = tenant.api("member").post(
        "/api/v1/donations", json={"amount_cents": 12345, "currency": "BHD", "note": "for the gala"}
    )
    assert response.status_code == 201, response.text
    donation = response.json()
    mail = inbox.wait_for(tenant.member.email, f"Donation receipt {donation['id']}")
    assert "Amount: 123.45 BHD" in mail.body
    assert other_tenant.api("owner").get(f"/api/v1/donations/{donation['id']}").status_code == 404


def test_invite_flow(
    tenant: TenantUnderTest, make_user: Any, inbox: Inbox, admin_db: psycopg.Connection[Any]
) -> None:
    invitee: User = make_user("invitee-")
    created = tenant.api("admin").post("/api/v1/invites", json={"email": invitee.email, "role": "member"})
    assert created.status_code == 201, created.text

    mail = inbox.wait_for(invitee.email, "invited")
    token = re.search(r"Invite token: (\S+)", mail.body)
    assert token, mail.body
    assert invitee.api.as_tenant(tenant.slug).get("/api/v1/catalog").status_code == 403

    stranger: User = make_user("stranger-")
    refused = stranger.api.post("/api/v1/invites/accept", json={"token": token[1]})
    assert refused.status_code == 403, refused.text

    accepted = invitee.api.post("/api/v1/invites/accept", json={"token": token[1]})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"tenant_id": tenant.id, "slug": tenant.slug, "role": "member"}
    assert invitee.api.as_tenant(tenant.slug).get("/api/v1/catalog").status_code == 200

    again = invitee.api.post("/api/v1/invites/accept", json={"token": token[1]})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invalid_invite"

    statuses = [i["status"] for i in tenant.api("admin").get("/api/v1/invites").json()]
    assert statuses == ["accepted"]


def test_forged_invite_token_is_refused(tenant: TenantUnderTest) -> None:
    response = tenant.member.api.post(
        "/api/v1/invites/accept", json={"token": "eyJhbGciOiJIUzI1NiJ9.e30.forged"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_invite"


def test_revoked_invite_is_not_sent_or_accepted(
    tenant: TenantUnderTest, other_tenant: TenantUnderTest
) -> None:
    invite = tenant.api("admin").post("/api/v1/invites", json={"email": "late@it.test"}).json()
    assert other_tenant.api("owner").delete(f"/api/v1/invites/{invite['id']}").status_code == 404
    assert tenant.api("admin").delete(f"/api/v1/invites/{invite['id']}").status_code == 204
    assert [i["status"] for i in tenant.api("admin").get("/api/v1/invites").json()] == ["revoked"]
