"""Pristine databases for tests that need one: cloned from a migrated, empty template in milliseconds
(`CREATE DATABASE … TEMPLATE …`) instead of running the migrations again.

The template is `<database>_template`: made on first use by running the app's own migrate command against it
(as app_migrator, with the same env contract as `up`), and remade when the app's inputs change (its digest is
kept as the database's comment). A clone gets the database-level grants the way the app's database got them
(`harness.provision.postgres`: PUBLIC has none, the roles may connect); everything inside the database —
tables, RLS policies, functions, default privileges — comes from the template. Clones are dropped with
`DROP DATABASE … WITH (FORCE)`.

Tenants remain the cheap unit of isolation (a scenario's tenants cost ~50 ms through the API); a clone is
for the tests that need a database no one else writes to: counting rows globally, a data migration, a seed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.runner import LocalRunner

TEMPLATE_SUFFIX = "_template"
COMMENT_PREFIX = "harness template of "
LOCK_KEY = 0x6861726E  # pg_advisory_lock key serialising template builds and clones ("harn")


def with_database(url: str, database: str) -> str:
    """`url` pointed at another database (query string kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass(frozen=True)
class ClonedDatabase:
    """A database of its own, shaped exactly like the app's, with no rows in it."""

    name: str
    contract: dict[
        str, str
    ]  # the backend's env contract, DATABASE_URL and MIGRATOR_DATABASE_URL pointed here
    admin_url: str  # superuser, for arranging and inspecting (bypasses RLS)
    seconds: float  # how long the clone took

    @property
    def database_url(self) -> str:
        """The runtime role's URL (RLS enforced), as DATABASE_URL."""
        return self.contract["DATABASE_URL"]

    @property
    def migrator_url(self) -> str:
        return self.contract["MIGRATOR_DATABASE_URL"]


class DatabaseCloner:
    """Makes and drops pristine databases on one running stack."""

    def __init__(self, runner: LocalRunner) -> None:
        self.runner = runner
        self.database = runner.topology.postgres.database
        self.template = f"{self.database}{TEMPLATE_SUFFIX}"
        self.admin = runner.admin_connections()[0]

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.admin.url, autocommit=True, connect_timeout=5)

    def clone(self, name: str | None = None) -> ClonedDatabase:
        """A new database from the template (made or remade first when the app's inputs changed)."""
        name = name or f"{self.database}_clone_{uuid.uuid4().hex[:10]}"
        with self._connect() as admin:
            admin.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                self._ensure_template(admin)
                started = time.perf_counter()
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                        sql.Identifier(name),
                        sql.Identifier(self.template),
                        sql.Identifier(self.runner.topology.postgres.owner_role),
                    )
                )
                self._grant(name)
                seconds = time.perf_counter() - started
            finally:
                admin.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        return ClonedDatabase(name, self._contract(name), self._admin_url(name), seconds)

    def drop(self, name: str) -> None:
        if name in (self.database, self.template):
            raise HarnessError(f"refusing to drop {name!r}: it is not a clone")
        with self._connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def drop_template(self) -> None:
        with self._connect() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.template))
            )

    # -- the template -----------------------------------------------------------------------------------------
    def _ensure_template(self, admin: psycopg.Connection) -> None:
        wanted = COMMENT_PREFIX + self.runner.inputs_digest()
        row = admin.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (self.template,),
        ).fetchone()
        if row is not None and row[0] == wanted:
            return
        template = sql.Identifier(self.template)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(template))
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                template, sql.Identifier(self.runner.topology.postgres.owner_role)
            )
        )
        self._grant(self.template)
        migrate = self.runner.topology.app.migrate
        if migrate:
            try:
                self.runner.run_one_off("migrate-template", migrate, self._contract(self.template))
                self._grant(self.template)  # the allow-list, on the tables the migrations made
            except HarnessError:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(template))
                raise
        # Written last: a template whose migration failed half-way is never taken for a good one.
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(template, sql.Literal(wanted)))

    def _grant(self, database: str) -> None:
        from harness.provision.postgres import provision_database_grants

        topology = self.runner.topology
        clone = topology.model_copy(
            update={"postgres": topology.postgres.model_copy(update={"database": database})}
        )
        provision_database_grants(clone, self.admin)  # the roles exist already: the app's database has them

    def _contract(self, database: str) -> dict[str, str]:
        contract = self.runner.env("backend")
        for key in ("DATABASE_URL", "MIGRATOR_DATABASE_URL"):
            contract[key] = with_database(contract[key], database)
        return contract

    def _admin_url(self, database: str) -> str:
        return self.admin.url_for(self.admin.superuser, self.admin.password, database)
