"""Provisioning as RDS's master user, reproduced on the stack's real Postgres 16.

On RDS the master user is `LOGIN NOSUPERUSER CREATEDB CREATEROLE` (a member of rds_superuser, which grants no
role attribute): it cannot read pg_authid, cannot give BYPASSRLS (PostgreSQL 16: only superusers and roles
that have it may), and may not act as the roles it creates until it grants itself SET. `harness deploy` runs
the same provisioning with those credentials (the `dbroles` one-off task), so it runs here with a role of
exactly that shape, in a database and roles of its own, followed by the real migrations as the migrator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.connections import PostgresConnection
from harness.errors import ProvisionError
from harness.provision.postgres import provision_postgres
from harness.testing import RunningStack
from harness.topology import Topology

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RdsLike:
    master: PostgresConnection
    topology: Topology
    migrator: str
    runtime: str

    def password(self, role: str) -> str:
        return f"Pw-{role}-{self.topology.postgres.database}"

    def url(self, role: str) -> str:
        return self.master.url_for(role, self.password(role), self.topology.postgres.database)


@pytest.fixture
def rds(stack: RunningStack) -> Iterator[RdsLike]:
    admin = stack.postgres
    tag = uuid.uuid4().hex[:8]
    master, migrator, runtime, database = f"rds_master_{tag}", f"mig_{tag}", f"usr_{tag}", f"rds_{tag}"
    with psycopg.connect(admin.url, autocommit=True) as db:
        # RDS's own definition of its master user (AWS docs, "Understanding the rds_superuser role").
        db.execute(
            f"CREATE ROLE {master} WITH LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE NOREPLICATION "
            f"PASSWORD 'Master-{tag}'"
        )
    pg = stack.topology.postgres
    roles = {migrator: pg.roles["app_migrator"], runtime: pg.roles["app_user"]}
    topology = stack.topology.model_copy(
        update={"postgres": pg.model_copy(update={"database": database, "roles": roles})}
    )
    conn = PostgresConnection(admin.host, admin.port, master, f"Master-{tag}")
    try:
        yield RdsLike(conn, topology, migrator, runtime)
    finally:
        with psycopg.connect(admin.url, autocommit=True) as db:
            db.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            for role in (migrator, runtime, master):
                db.execute(f"DROP ROLE IF EXISTS {role}")


def migrate(rds: RdsLike) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"MIGRATOR_DATABASE_URL": rds.url(rds.migrator), "DATABASE_URL": rds.url(rds.runtime)}
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "app/alembic.ini", "upgrade", "head"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_master_user_provisions_idempotently_and_the_app_works_without_bypassrls(rds: RdsLike) -> None:
    first = provision_postgres(rds.topology, rds.master, rds.password)
    assert f"postgres: created role {rds.migrator}" in first
    assert f"postgres: the connecting role may now SET ROLE {rds.migrator}" in first
    assert provision_postgres(rds.topology, rds.master, rds.password) == []  # and it can still get in

    done = migrate(rds)
    assert done.returncode == 0, done.stderr[-2000:]
    # As a rollout does (dbroles, migrate, dbroles): the runtime role's allow-list on the new tables.
    after = provision_postgres(rds.topology, rds.master, rds.password)
    assert f"postgres: revoked DELETE on table invites from {rds.runtime}" in after, after
    assert provision_postgres(rds.topology, rds.master, rds.password) == []

    # autocommit: each `transaction()` is a real transaction, so `set_config(..., true)` ends with it
    with psycopg.connect(rds.url(rds.runtime), autocommit=True) as db:
        roles: Any = db.execute(
            "SELECT rolname, rolbypassrls, rolsuper FROM pg_roles WHERE rolname IN (%s, %s) ORDER BY rolname",
            (rds.migrator, rds.runtime),
        ).fetchall()
        assert roles == sorted([(rds.migrator, False, False), (rds.runtime, False, False)])
        tenant, other = uuid.uuid4(), uuid.uuid4()
        for tenant_id, slug, sub in ((tenant, "acme", "sub-owner"), (other, "globex", "sub-other")):
            with db.transaction():
                db.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
                db.execute(
                    "INSERT INTO tenants (id, slug, name) VALUES (%s, %s, %s)", (tenant_id, slug, slug)
                )
                db.execute(
                    "INSERT INTO memberships (id, tenant_id, user_sub, email, role)"
                    " VALUES (gen_random_uuid(), %s, %s, %s, 'owner')",
                    (tenant_id, sub, f"{sub}@it.test"),
                )
        # the definer functions (owned by the migrator, which has no BYPASSRLS) still find memberships ...
        assert db.execute("SELECT tenant_slug FROM app_memberships_of('sub-owner')").fetchall() == [("acme",)]
        assert db.execute(
            "SELECT tenant_slug FROM app_resolve_membership('acme', 'sub-owner')"
        ).fetchall() == [("acme",)]
        assert db.execute("SELECT * FROM app_resolve_membership('globex', 'sub-owner')").fetchall() == []
        # ... while the runtime role itself still sees nothing without a tenant, and one tenant with it
        assert db.execute("SELECT count(*) FROM memberships").fetchone() == (0,)
        with db.transaction():
            db.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
            assert db.execute("SELECT count(*) FROM tenants").fetchone() == (1,)


def test_bypassrls_is_refused_with_how_to_fix_it(rds: RdsLike) -> None:
    pg = rds.topology.postgres
    roles = dict(pg.roles)
    roles[rds.migrator] = roles[rds.migrator].model_copy(update={"bypass_rls": True})
    topology = rds.topology.model_copy(update={"postgres": pg.model_copy(update={"roles": roles})})
    with pytest.raises(ProvisionError) as refused:
        provision_postgres(topology, rds.master, rds.password)
    assert "BYPASSRLS" in str(refused.value)
    assert "bypass_rls = false" in (refused.value.hint or "")
