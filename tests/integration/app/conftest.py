"""Fixtures for the reference app's integration tests, built on the session `stack` fixture only.

Every test makes its own tenants and Cognito users (unique ids), so tests run in parallel on one stack;
the factories record what they create and remove it at the end of the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import redis
from app_stack_clients import ApiClient, Cognito, Inbox, TenantUnderTest, User, database_url_for, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def backend_env(stack: Any) -> dict[str, str]:
    return dict(stack.env("backend"))


@pytest.fixture(scope="session")
def worker_env(stack: Any) -> dict[str, str]:
    return dict(stack.env("worker"))


@pytest.fixture(scope="session")
def cognito(backend_env: dict[str, str]) -> Iterator[Cognito]:
    client = Cognito(backend_env)
    yield client
    client.delete_created()


@pytest.fixture(scope="session")
def admin_db(stack: Any, backend_env: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """Superuser connection to the app's database (bypasses RLS: for arranging and inspecting)."""
    url = database_url_for(stack.admin_database_url, backend_env["DATABASE_URL"])
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def app_user_db(backend_env: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the app's runtime role (RLS enforced), like the backend's pool."""
    with psycopg.connect(backend_env["DATABASE_URL"]) as connection:
        yield connection


@pytest.fixture(scope="session")
def redis_admin(stack: Any) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_admin_url, decode_responses=True)


@pytest.fixture(scope="session")
def inbox(backend_env: dict[str, str]) -> Inbox:
    return Inbox(backend_env["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="session")
def make_user(stack: Any, cognito: Cognito) -> Callable[..., User]:
    def make(prefix: str = "user-") -> User:
        email = f"{unique(prefix)}@it.test"
        sub = cognito.create_user(email)
        tokens = cognito.sign_in(email)
        return User(email=email, sub=sub, tokens=tokens, api=ApiClient(stack.api_url, tokens.access))

    return make


@pytest.fixture(scope="session")
def make_tenant(
    make_user: Callable[..., User], admin_db: psycopg.Connection[Any], redis_admin: redis.Redis
) -> Iterator[Callable[..., TenantUnderTest]]:
    """A fresh tenant created through the API by its owner, plus an admin and a member.

    The admin and member memberships are inserted directly (the invite flow has its own test).
    """
    created: list[str] = []

    def make() -> TenantUnderTest:
        owner = make_user("owner-")
        slug = unique("t-")
        response = owner.api.post("/api/v1/tenants", json={"slug": slug, "name": f"Tenant {slug}"})
        assert response.status_code == 201, response.text
        tenant_id = response.json()["id"]
        created.append(tenant_id)
        users = {"owner": owner}
        for role in ("admin", "member"):
            user = make_user(f"{role}-")
            admin_db.execute(
                "INSERT INTO memberships (id, tenant_id, user_sub, email, role) VALUES (gen_random_uuid(), %s, %s, %s, %s)",
                (tenant_id, user.sub, user.email, role),
            )
            users[role] = user
        return TenantUnderTest(id=tenant_id, slug=slug, users=users)

    yield make
    for tenant_id in created:
        admin_db.execute("DELETE FROM tenants WHERE id = %s", (tenant_id,))
        keys = [k for pattern in ("ai:*" + tenant_id + "*",) for k in redis_admin.scan_iter(match=pattern)]
        if keys:
            redis_admin.delete(*keys)


@pytest.fixture
def tenant(make_tenant: Callable[[], TenantUnderTest]) -> TenantUnderTest:
    return make_tenant()


@pytest.fixture
def other_tenant(make_tenant: Callable[[], TenantUnderTest]) -> TenantUnderTest:
    return make_tenant()
