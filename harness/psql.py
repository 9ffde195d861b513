"""`harness psql`: a psql shell on the stack's database as one of the topology's roles, optionally inside a
tenant's RLS context — "what does tenant acme see?" answered by Postgres itself.

The password travels in the environment (`PGPASSWORD`), never on the command line; the tenant is a session
setting (`PGOPTIONS=-c app.tenant_id=…`), exactly the setting the policies read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.connections import PostgresConnection
from harness.errors import HarnessError
from harness.topology import Topology

ADMIN = "admin"
TENANT_SETTING = "app.tenant_id"  # app/migrations: app_current_tenant() reads it


@dataclass(frozen=True)
class PsqlInvocation:
    argv: list[str]
    env: dict[str, str]  # to add to the caller's environment
    role: str
    tenant_id: str | None


def role_choices(topology: Topology) -> list[str]:
    return [ADMIN, *topology.postgres.roles]


def psql_invocation(
    topology: Topology,
    admin: PostgresConnection,
    role_password: Callable[[str], str],
    psql: Path,
    *,
    role: str,
    tenant: str | None,
    args: Sequence[str] = (),
    find_tenant: Callable[[str], str | None] | None = None,
) -> PsqlInvocation:
    """The psql command and environment for `role` (and `tenant`: a slug or a tenant id)."""
    if role == ADMIN:
        user, password = admin.superuser, admin.password
    elif role in topology.postgres.roles:
        user, password = role, role_password(role)
    else:
        raise HarnessError(
            f"no Postgres role {role!r} in the topology", hint=f"roles: {', '.join(role_choices(topology))}"
        )
    tenant_id = None
    if tenant is not None:
        if role == ADMIN:
            raise HarnessError(
                "the admin role is a superuser: it bypasses row-level security, so a tenant means nothing to it",
                hint="use --role app_user (the app's runtime role) to see what one tenant sees",
            )
        tenant_id = _tenant_id(tenant, find_tenant)
    if not psql.is_file():
        raise HarnessError(
            f"no psql binary at {psql}",
            hint="reinstall the pgserver wheel (`pip install --force-reinstall pgserver`)",
        )
    env = {
        "PGHOST": admin.host,
        "PGPORT": str(admin.port),
        "PGUSER": user,
        "PGPASSWORD": password,
        "PGDATABASE": topology.postgres.database,
        "PGAPPNAME": f"harness-psql-{role}",
    }
    if tenant_id is not None:
        env["PGOPTIONS"] = f"-c {TENANT_SETTING}={tenant_id}"
    return PsqlInvocation([str(psql), *args], env, role, tenant_id)


def _tenant_id(tenant: str, find_tenant: Callable[[str], str | None] | None) -> str:
    try:
        return str(uuid.UUID(tenant))
    except ValueError:
        pass
    found = find_tenant(tenant) if find_tenant is not None else None
    if found is None:
        raise HarnessError(
            f"no tenant with slug {tenant!r}",
            hint="pass a tenant slug or id that exists (seed/seed.yaml lists the seeded ones)",
        )
    return found


def tenant_by_slug(admin: PostgresConnection, database: str) -> Callable[[str], str | None]:
    """Looks a tenant's id up by slug as the superuser (the one role that sees every tenant)."""

    def find(slug: str) -> str | None:
        import psycopg

        with psycopg.connect(
            admin.url_for(admin.superuser, admin.password, database), connect_timeout=5
        ) as db:
            row = db.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
        return str(row[0]) if row else None

    return find
