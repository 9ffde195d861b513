"""One tenant back to its seeded state, and the whole app database dropped, migrated and re-seeded.

`reset_tenant(runner, "acme")` removes everything of that tenant, then runs the app's seed for it alone:

- rows: every row of every table with a `tenant_id` column, and the `tenants` row (as the superuser);
- objects: every version and delete marker under the topology's tenant prefix (`{tenant_id}/`);
- Redis: every key containing the tenant id, in the topology's namespaces;
- Cognito: users who belonged to this tenant only and are not seed users are deleted; the seeded members
  get their seed password and exactly their seeded group back (`python -m app.seed FILE --tenant SLUG`).

Every other tenant's rows, objects and keys are left alone. A tenant the seed does not have is refused;
`delete=True` removes it instead (the same wipe, no re-seed). The seed's tenants come from the app's seed
command with `--list` (one `seed-tenants: {json}` line), so the harness never parses the seed file itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.devloop import require_up
from harness.errors import HarnessError

Progress = Callable[[str, str], None]
LISTING_MARK = "seed-tenants: "  # app/seed.py's LISTING_MARK
LISTING_CACHE = "seed-listing.json"


@dataclass(frozen=True)
class SeedTenant:
    slug: str
    id: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Seed:
    tenants: dict[str, SeedTenant]
    users: frozenset[str]


@dataclass(frozen=True)
class TenantInfo:
    """A row of `harness tenant list`."""

    id: str
    slug: str
    name: str
    seeded: bool
    members: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ResetReport:
    slug: str
    tenant_id: str
    deleted: bool  # --delete: removed, not re-seeded
    rows: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    redis_keys: int = 0
    cognito_users_deleted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _no_progress(component: str, message: str) -> None:
    return None


def _seed_argv(runner: Any) -> list[str]:
    argv = list(runner.topology.app.seed or [])
    if not argv:
        raise HarnessError("the topology's [app] table has no `seed` command", hint="see docs/topology.md")
    return argv


def _admin_db(runner: Any) -> Any:
    import psycopg

    pg = runner.admin_connections()[0]
    url = pg.url_for(pg.superuser, pg.password, runner.topology.postgres.database)
    return psycopg.connect(url, connect_timeout=10, autocommit=True)


def seed_listing(runner: Any) -> Seed:
    """The seeded tenants and users, as the app's seed command lists them (cached in the state dir until the
    app's inputs, which include the seed file, change)."""
    digest = runner.inputs_digest()
    cached = runner.state.read_json(LISTING_CACHE)
    if cached.get("inputs") == digest and isinstance(cached.get("listing"), dict):
        data = cached["listing"]
    else:
        runner.run_one_off("seed-list", [*_seed_argv(runner), "--list"], runner.env("backend"))
        lines = runner.state.log_file("seed-list").read_text(errors="replace").splitlines()
        found = [line for line in lines if line.startswith(LISTING_MARK)]
        if not found:
            raise HarnessError(
                f"the seed command printed no `{LISTING_MARK.strip()}` line with --list",
                hint=f"see {runner.state.log_file('seed-list')}; the seed command must support --list and --tenant",
            )
        data = json.loads(found[-1][len(LISTING_MARK) :])
        runner.state.write_json(LISTING_CACHE, {"inputs": digest, "listing": data})
    tenants = {
        t["slug"]: SeedTenant(t["slug"], t["id"], t["name"], tuple(t.get("members", ())))
        for t in data["tenants"]
    }
    return Seed(tenants, frozenset(data.get("users", ())))


def list_tenants(runner: Any, seed: Seed | None = None) -> list[TenantInfo]:
    """Every tenant in the app database, with whether the seed has it and its member count."""
    require_up(runner, ["postgres"])
    seed = seed or seed_listing(runner)
    with _admin_db(runner) as db:
        rows = db.execute(
            "SELECT t.id, t.slug, t.name, (SELECT count(*) FROM memberships m WHERE m.tenant_id = t.id)"
            " FROM tenants t ORDER BY t.slug"
        ).fetchall()
    return [
        TenantInfo(str(tid), slug, name, slug in seed.tenants and seed.tenants[slug].id == str(tid), int(n))
        for tid, slug, name, n in rows
    ]


def reset_tenant(
    runner: Any, slug: str, *, delete: bool = False, progress: Progress = _no_progress
) -> ResetReport:
    """Put the seeded tenant `slug` back exactly as the seed has it (or, with `delete`, remove any tenant)."""
    started = time.monotonic()
    require_up(runner, ["postgres", "redis", "aws"])
    seed = seed_listing(runner)
    seeded = seed.tenants.get(slug)
    with _admin_db(runner) as db:
        row = db.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
    tenant_id = str(row[0]) if row else (seeded.id if seeded else None)
    if seeded is None and not delete:
        known = ", ".join(sorted(seed.tenants)) or "none"
        raise HarnessError(
            f"tenant {slug!r} is not in the seed (seeded tenants: {known}), so it has no seeded state",
            hint=f"`harness tenant reset {slug} --delete` deletes it",
        )
    if tenant_id is None:
        raise HarnessError(f"no tenant {slug!r} in the database", hint="`harness tenant list` shows them")
    report = ResetReport(slug, tenant_id, deleted=delete)
    members = _wipe_rows(runner, tenant_id, report)
    progress("postgres", f"deleted {sum(report.rows.values())} row(s) of {slug}")
    report.objects = _wipe_objects(runner, tenant_id)
    progress("aws", f"deleted {report.objects} object version(s) under {tenant_id}/")
    report.redis_keys = _wipe_redis(runner, tenant_id)
    progress("redis", f"deleted {report.redis_keys} key(s)")
    report.cognito_users_deleted = _wipe_cognito_users(runner, members - seed.users)
    if report.cognito_users_deleted:
        progress("aws", f"deleted Cognito user(s) {', '.join(report.cognito_users_deleted)}")
    if not delete:
        runner.run_one_off(
            "seed", [*_seed_argv(runner), "--tenant", slug], runner.env("backend"), progress=progress
        )
    report.seconds = time.monotonic() - started
    return report


def _wipe_rows(runner: Any, tenant_id: str, report: ResetReport) -> set[str]:
    """Delete the tenant's rows; returns the emails of its members that belong to no other tenant."""
    schema = runner.topology.postgres.schema_name
    with _admin_db(runner) as db, db.transaction():
        alone = {
            str(email).lower()
            for (email,) in db.execute(
                "SELECT m.email FROM memberships m WHERE m.tenant_id = %s AND NOT EXISTS"
                " (SELECT 1 FROM memberships o WHERE o.email = m.email AND o.tenant_id <> m.tenant_id)",
                (tenant_id,),
            ).fetchall()
        }
        tables = [
            name
            for (name,) in db.execute(
                "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t"
                " USING (table_schema, table_name) WHERE c.table_schema = %s AND c.column_name = 'tenant_id'"
                " AND t.table_type = 'BASE TABLE' ORDER BY c.table_name",
                (schema,),
            ).fetchall()
        ]
        # every row of the tenant goes, so foreign keys between them need no ordering
        db.execute("SET LOCAL session_replication_role = replica")
        from psycopg import sql

        for table in tables:
            deleted = db.execute(
                sql.SQL("DELETE FROM {}.{} WHERE tenant_id = %s").format(
                    sql.Identifier(schema), sql.Identifier(table)
                ),
                (tenant_id,),
            ).rowcount
            if deleted:
                report.rows[table] = deleted
        deleted = db.execute("DELETE FROM tenants WHERE id = %s", (tenant_id,)).rowcount
        if deleted:
            report.rows["tenants"] = deleted
    return alone


def _wipe_objects(runner: Any, tenant_id: str) -> int:
    s3 = runner.admin_connections()[2].client("s3")
    bucket = runner.env("backend")["S3_BUCKET"]
    prefix = runner.topology.s3.tenant_prefix.format(tenant_id=tenant_id)
    deleted = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True})
        deleted += len(doomed)
    return deleted


def _wipe_redis(runner: Any, tenant_id: str) -> int:
    import redis

    client = redis.Redis.from_url(runner.admin_connections()[1].url, socket_timeout=10)
    try:
        keys = [key for key in client.scan_iter(match=f"*{tenant_id}*", count=1000)]
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def _wipe_cognito_users(runner: Any, emails: set[str]) -> list[str]:
    if not emails:
        return []
    cognito = runner.admin_connections()[2].client("cognito-idp")
    pool = runner.env("backend")["COGNITO_USER_POOL_ID"]
    deleted = []
    for email in sorted(emails):
        try:
            cognito.admin_delete_user(UserPoolId=pool, Username=email)
            deleted.append(email)
        except cognito.exceptions.UserNotFoundException:
            pass
    return deleted


@dataclass
class DbResetReport:
    database: str
    seconds: float
    tenants: int


def reset_database(runner: Any, *, progress: Progress = _no_progress) -> DbResetReport:
    """Drop the app database (closing its connections), create it again, migrate and seed it."""
    from psycopg import sql

    from harness.provision.apply import provision

    started = time.monotonic()
    require_up(runner, ["postgres", "redis", "aws"])
    database = runner.topology.postgres.database
    pg = runner.admin_connections()[0]
    import psycopg

    with psycopg.connect(
        pg.url_for(pg.superuser, pg.password, "postgres"), autocommit=True, connect_timeout=10
    ) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    progress("postgres", f"dropped {database}")
    provision(runner.topology, runner.infrastructure(), runner.state)  # creates it again, with its grants
    contract = runner.env("backend")
    app = runner.topology.app
    if app.migrate:
        runner.run_one_off("migrate", app.migrate, contract, progress=progress)
        runner.apply_privileges()
    if app.seed:
        runner.run_one_off("seed", app.seed, contract, progress=progress)
    with _admin_db(runner) as db:
        row = db.execute("SELECT count(*) FROM tenants").fetchone()
    return DbResetReport(database, time.monotonic() - started, int(row[0]) if row else 0)
