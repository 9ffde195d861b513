"""Health turns 503 when a dependency fails; media keys never leave the tenant's prefix; email rendering."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from app import emails
from app.api import health
from app.api.media import key_belongs_to, safe_filename


async def ok() -> None:
    return None


async def refused() -> None:
    raise ConnectionRefusedError("redis down")


async def hangs() -> None:
    await asyncio.sleep(60)


@pytest.mark.parametrize("down", [set(), {"redis"}, {"database"}, {"s3"}, {"cognito"}, {"s3", "redis"}])
def test_health_names_every_dependency_and_answers_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch, down: set[str]
) -> None:
    for name, probe in (
        ("database", "_database"),
        ("redis", "_redis"),
        ("s3", "_s3"),
        ("cognito", "_cognito"),
    ):
        monkeypatch.setattr(health, probe, refused if name in down else ok)
    response = asyncio.run(health.health())
    body = json.loads(response.body)
    assert set(body["checks"]) == {"database", "redis", "s3", "cognito"}
    assert {name for name, check in body["checks"].items() if not check["ok"]} == down
    assert response.status_code == (503 if down else 200)
    assert ("retry-after" in response.headers) is bool(down)


def test_health_does_not_hang_on_a_stuck_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.05)
    for probe in ("_database", "_s3", "_cognito"):
        monkeypatch.setattr(health, probe, ok)
    monkeypatch.setattr(health, "_redis", hangs)
    response = asyncio.run(health.health())
    assert response.status_code == 503
    assert json.loads(response.body)["checks"]["redis"]["error"] == "TimeoutError"


TENANT = uuid.UUID("11111111-2222-3333-4444-555555555555")


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        (f"{TENANT}/a/logo.png", True),
        (f"{TENANT}/logo.png", True),
        (f"{TENANT}/", False),
        (f"{TENANT}/../other/x", False),
        (f"{TENANT}//x", False),
        (f"{TENANT}/./x", False),
        ("81fc00e7-8d9b-4131-ad7d-8212d6c2362b/logo.png", False),
        (f"{TENANT}-evil/logo.png", False),
        ("logo.png", False),
    ],
)
def test_key_belongs_to_tenant(key: str, allowed: bool) -> None:
    assert key_belongs_to(key, TENANT) is allowed


@pytest.mark.parametrize(
    ("name", "safe"),
    [("logo.png", "logo.png"), ("../../etc/passwd", "passwd"), ("a b?.png", "a_b_.png"), ("..", "file")],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_order_confirmation_names_the_order_and_items() -> None:
    email = emails.order_confirmation(
        tenant_id=str(TENANT),
        tenant_name="Acme",
        order_id="o-1",
        to="a@b.test",
        items=[{"sku": "TSHIRT", "name": "Tee", "qty": 2, "unit_price_cents": 2500}],
        total_cents=5000,
        currency="USD",
    )
    assert email.subject == "Order o-1 confirmed - Acme"
    assert "2 x Tee (TSHIRT) @ 25.00 USD" in email.text
    assert "Total: 50.00 USD" in email.text
    assert email.idempotency_key == "order-confirmation-o-1"


def test_ses_tag_values_are_sanitised() -> None:
    assert emails._tag_value("order-confirmation-1b2c.x@y") == "order-confirmation-1b2c_x_y"
