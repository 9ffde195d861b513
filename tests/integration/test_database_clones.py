"""Pristine databases cloned from a migrated template: shaped like the app's database (schema at head, RLS,
grants), empty, independent of each other and of the app's database, and remade when the app changes."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from harness.clones import COMMENT_PREFIX, ClonedDatabase, DatabaseCloner
from harness.errors import HarnessError
from harness.testing import RunningStack

pytestmark = pytest.mark.integration


def one(url: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(query, params).fetchone()
    return row[0] if row else None


def test_a_clone_is_migrated_empty_and_shaped_like_the_app_database(
    stack: RunningStack, pristine_database: ClonedDatabase
) -> None:
    app_admin = stack.admin_database_url
    clone = pristine_database
    head = one(app_admin, "SELECT version_num FROM alembic_version")
    assert one(clone.admin_url, "SELECT version_num FROM alembic_version") == head
    assert one(clone.admin_url, "SELECT count(*) FROM tenants") == 0
    assert one(app_admin, "SELECT count(*) FROM tenants") > 0  # the seeded app database is untouched
    policies = "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'"
    assert one(clone.admin_url, policies) == one(app_admin, policies)
    # database-level grants as provisioning made them: PUBLIC may not connect, the runtime role may
    assert (
        one(clone.admin_url, "SELECT has_database_privilege('public', current_database(), 'CONNECT')")
        is False
    )
    assert one(clone.database_url, "SELECT current_user") == "app_user"
    # RLS holds in the clone exactly as in the app's database
    tenant = uuid.uuid4()
    with psycopg.connect(clone.database_url, autocommit=True) as db:
        with db.transaction():
            db.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
            db.execute("INSERT INTO tenants (id, slug, name) VALUES (%s, 'solo', 'Solo')", (tenant,))
        assert db.execute("SELECT count(*) FROM tenants").fetchone() == (0,)
    assert one(clone.admin_url, "SELECT count(*) FROM tenants") == 1
    assert clone.contract["DATABASE_URL"].rsplit("/", 1)[1].split("?")[0] == clone.name


def test_clones_are_independent_and_dropped(stack: RunningStack) -> None:
    cloner = DatabaseCloner(stack.runner)
    with ThreadPoolExecutor(max_workers=3) as pool:
        clones = list(pool.map(lambda _: cloner.clone(), range(3)))
    try:
        assert len({c.name for c in clones}) == 3
        tenant = uuid.uuid4()
        with psycopg.connect(clones[0].admin_url, autocommit=True) as db:
            db.execute("INSERT INTO tenants (id, slug, name) VALUES (%s, 'only-here', 'x')", (tenant,))
        assert [one(c.admin_url, "SELECT count(*) FROM tenants") for c in clones] == [1, 0, 0]
    finally:
        for clone in clones:
            cloner.drop(clone.name)
    names = [c.name for c in clones]
    assert one(stack.postgres.url, "SELECT count(*) FROM pg_database WHERE datname = ANY(%s)", (names,)) == 0
    with pytest.raises(HarnessError, match="not a clone"):
        cloner.drop(stack.topology.postgres.database)


def test_the_template_is_remade_when_the_app_changes(stack: RunningStack) -> None:
    cloner = DatabaseCloner(stack.runner)
    cloner.drop(cloner.clone().name)  # the template exists and is current
    comment = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s"
    current = one(stack.postgres.url, comment, (cloner.template,))
    assert current == COMMENT_PREFIX + stack.runner.inputs_digest()
    with psycopg.connect(stack.postgres.url, autocommit=True) as db:  # as if app/ had changed since
        db.execute(f"COMMENT ON DATABASE {cloner.template} IS 'harness template of an older app'")
    clone = cloner.clone()
    try:
        assert one(stack.postgres.url, comment, (cloner.template,)) == current  # remade, migrated again
        assert one(clone.admin_url, "SELECT count(*) FROM alembic_version") == 1
    finally:
        cloner.drop(clone.name)
