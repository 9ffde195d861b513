"""Database, roles and grants, shaped as production: the runtime role owns nothing and cannot bypass RLS.

Idempotent: each statement runs only when the catalog says it is needed, and each one run is reported as
a change, so a second run reports none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable

import psycopg
from psycopg import sql

from harness.connections import PostgresConnection
from harness.errors import ProvisionError
from harness.provision.privileges import apply_privileges
from harness.topology import Topology


def scram_matches(verifier: str | None, password: str) -> bool:
    """Whether a `SCRAM-SHA-256$iter:salt$stored:server` verifier (pg_authid.rolpassword) is for `password`."""
    if not verifier or not verifier.startswith("SCRAM-SHA-256$"):
        return False
    try:
        _, iter_salt, keys = verifier.split("$")
        iterations, salt_b64 = iter_salt.split(":")
        stored_b64, server_b64 = keys.split(":")
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt_b64), int(iterations))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored_b64)) and (
            hmac.compare_digest(server_key, base64.b64decode(server_b64))
        )
    except (ValueError, TypeError):
        return False


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """A SCRAM-SHA-256 verifier for `password`, as psql's `\\password` sends it: the server (and its log, if a
    statement fails) never sees the password itself."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"


def provision_postgres(
    topology: Topology, conn: PostgresConnection, role_password: Callable[[str], str]
) -> list[str]:
    """Roles, database, schema and grants. `conn` may be a superuser (local tiers) or, as on RDS, a master
    role with only CREATEROLE and CREATEDB: no pg_authid, no BYPASSRLS, and ownership changes need SET ROLE."""
    pg = topology.postgres
    changes: list[str] = []
    try:
        with psycopg.connect(conn.url, autocommit=True, connect_timeout=5) as admin:
            superuser = _is_superuser(admin)
            for name, role in pg.roles.items():
                changes += _ensure_role(
                    admin, conn, name, role.login, role.bypass_rls, role_password(name), superuser
                )
            if not superuser:
                changes += _ensure_can_set_role(admin, pg.owner_role)
            changes += _ensure_database(admin, pg.database, pg.owner_role)
        changes += _schema_and_grants(topology, conn)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ProvisionError(
            f"postgres: {conn.superuser} on {conn.endpoint} lacks a privilege provisioning needs: {exc}",
            hint="connect as a superuser, or (RDS) as the master user: it needs CREATEROLE and CREATEDB, and "
            "cannot grant BYPASSRLS (keep bypass_rls = false in topology.toml)",
        ) from exc
    except psycopg.Error as exc:
        raise ProvisionError(
            f"postgres: provisioning failed on {conn.endpoint}: {exc}",
            hint="`harness logs postgres` shows the server's side",
        ) from exc
    return changes


def provision_database_grants(topology: Topology, conn: PostgresConnection) -> list[str]:
    """Only the schema and grants of `topology.postgres.database` (its roles and the database exist): what a
    database cloned from a template still needs (harness/clones.py), and what every migration is followed by
    (the allow-list of harness/provision/privileges.py applied to the tables it made)."""
    try:
        return _schema_and_grants(topology, conn)
    except psycopg.Error as exc:
        raise ProvisionError(f"postgres: granting on {topology.postgres.database} failed: {exc}") from exc


def _schema_and_grants(topology: Topology, conn: PostgresConnection) -> list[str]:
    pg = topology.postgres
    with psycopg.connect(conn.url_for(conn.superuser, conn.password, pg.database), autocommit=True) as db:
        # As the owner, whoever connected: what it may do, a master role may do through it.
        db.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(pg.owner_role)))
        changes = _ensure_schema_and_grants(db, topology)
        db.execute("RESET ROLE")
    return changes


def _is_superuser(db: psycopg.Connection) -> bool:
    row = db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _ensure_role(
    db: psycopg.Connection,
    conn: PostgresConnection,
    name: str,
    login: bool,
    bypass_rls: bool,
    password: str,
    superuser: bool,
) -> list[str]:
    want = {
        "rolcanlogin": login,
        "rolsuper": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolreplication": False,
        "rolbypassrls": bypass_rls,
        "rolinherit": True,
    }
    attrs = sql.SQL(" ").join(
        sql.SQL(s)
        for s in (
            "LOGIN" if login else "NOLOGIN",
            "NOSUPERUSER",
            "NOCREATEROLE",
            "NOCREATEDB",
            "NOREPLICATION",
            "BYPASSRLS" if bypass_rls else "NOBYPASSRLS",
            "INHERIT",
        )
    )
    # pg_roles, not pg_authid: readable without superuser (RDS's master cannot read pg_authid).
    row = db.execute(
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit"
        " FROM pg_roles WHERE rolname = %s",
        (name,),
    ).fetchone()
    ident = sql.Identifier(name)
    if row is None:
        db.execute(
            sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
                ident, attrs, sql.Literal(scram_verifier(password))
            )
        )
        return [f"postgres: created role {name}"]
    changes = []
    have = dict(zip(want, row, strict=True))
    if have != want:
        db.execute(sql.SQL("ALTER ROLE {} WITH {}").format(ident, attrs))
        changes.append(f"postgres: reset attributes of role {name}")
    if not _password_matches(db, conn, name, login, password, superuser):
        db.execute(
            sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(ident, sql.Literal(scram_verifier(password)))
        )
        changes.append(f"postgres: set password of role {name}")
    return changes


def _password_matches(
    db: psycopg.Connection, conn: PostgresConnection, name: str, login: bool, password: str, superuser: bool
) -> bool:
    """A superuser reads the SCRAM verifier; anyone else finds out by logging in as the role."""
    if superuser:
        row = db.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (name,)).fetchone()
        return scram_matches(row[0] if row else None, password)
    if not login:
        return False
    try:
        with psycopg.connect(conn.url_for(name, password, "postgres"), connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False  # wrong password (or no way in to check): set it


def _ensure_can_set_role(db: psycopg.Connection, owner: str) -> list[str]:
    """A CREATEROLE role that created `owner` holds ADMIN on it (PG16) but may not act as it: creating the
    database OWNER it, and later SET ROLE to it, need the SET option, which ADMIN lets it grant itself."""
    row = db.execute("SELECT pg_has_role(current_user, %s, 'SET')", (owner,)).fetchone()
    if row and row[0]:
        return []
    db.execute(sql.SQL("GRANT {} TO CURRENT_USER WITH INHERIT FALSE, SET TRUE").format(sql.Identifier(owner)))
    return [f"postgres: the connecting role may now SET ROLE {owner}"]


def _ensure_database(db: psycopg.Connection, database: str, owner: str) -> list[str]:
    row = db.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
    ).fetchone()
    if row is None:
        db.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner))
        )
        return [f"postgres: created database {database} owned by {owner}"]
    if row[0] != owner:
        db.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(owner))
        )
        return [f"postgres: database {database} now owned by {owner}"]
    return []


def _ensure_schema_and_grants(db: psycopg.Connection, topology: Topology) -> list[str]:
    pg = topology.postgres
    owner = pg.owner_role
    schema = pg.schema_name
    changes: list[str] = []

    def run(check: str, params: tuple[object, ...], statement: sql.Composed, change: str) -> None:
        row = db.execute(check, params).fetchone()
        if not (row and row[0]):
            db.execute(statement)
            changes.append(f"postgres: {change}")

    run(
        "SELECT true FROM pg_namespace WHERE nspname = %s",
        (schema,),
        sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(schema), sql.Identifier(owner)),
        f"created schema {schema}",
    )
    run(
        "SELECT pg_get_userbyid(nspowner) = %s FROM pg_namespace WHERE nspname = %s",
        (owner, schema),
        sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), sql.Identifier(owner)),
        f"schema {schema} now owned by {owner}",
    )
    # Nobody but the roles we grant may connect or create objects (PUBLIC gets CONNECT/TEMP by default).
    run(
        "SELECT NOT has_database_privilege('public', %s, 'CONNECT')",
        (pg.database,),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(pg.database)),
        f"revoked PUBLIC's privileges on database {pg.database}",
    )
    run(
        "SELECT NOT has_schema_privilege('public', %s, 'CREATE') AND NOT has_schema_privilege('public', %s, 'USAGE')",
        (schema, schema),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema)),
        f"revoked PUBLIC's privileges on schema {schema}",
    )
    run(
        "SELECT has_database_privilege(%s, %s, 'CONNECT')",
        (owner, pg.database),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(pg.database), sql.Identifier(owner)
        ),
        f"granted CONNECT on {pg.database} to {owner}",
    )
    # A master role that is not a superuser (RDS) must still get in next time, after PUBLIC lost CONNECT.
    run(
        "SELECT rolsuper OR has_database_privilege(session_user, %s, 'CONNECT') FROM pg_roles"
        " WHERE rolname = session_user",
        (pg.database,),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO SESSION_USER").format(sql.Identifier(pg.database)),
        f"granted CONNECT on {pg.database} to the provisioning role",
    )
    # Each runtime role: exactly its allow-list (CONNECT, USAGE, per-table privileges), nothing else.
    changes += apply_privileges(db, topology)
    return changes
