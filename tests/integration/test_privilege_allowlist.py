"""app_user holds exactly the privileges of its allow-list (`[postgres.roles.app_user.privileges]`), and
nothing else: every privilege it has anywhere in the cluster is enumerated and compared with that list.

What is enumerated, for the runtime role, through PostgreSQL's own `has_*_privilege` functions (so grants to
PUBLIC and through role membership count too) and the catalogs' ACL columns:

- every database (CONNECT, TEMPORARY, CREATE) and every schema of the app's database (USAGE, CREATE);
- every table, view and sequence of the non-system schemas (each table and sequence privilege), and any
  column privilege beyond the table's own;
- every routine (EXECUTE) and standalone type (USAGE) of those schemas, every language, tablespace, foreign
  data wrapper and server;
- large objects (owned or granted), parameters (SET on superuser-only settings, ALTER SYSTEM on any),
  default privileges that would give the role anything, role memberships and per-role settings, and any
  explicit ACL entry naming the role in any catalog.

The only privileges outside the allow-list are PUBLIC's built-ins every PostgreSQL (and RDS) has and the
harness cannot take away there: CONNECT/TEMPORARY on the maintenance databases, USAGE on pg_catalog,
information_schema and the languages (creating a function needs CREATE on a schema, which it has
nowhere).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from harness.clones import ClonedDatabase
from harness.errors import ProvisionError
from harness.provision.postgres import provision_database_grants
from harness.testing import RunningStack
from harness.topology import Topology
from harness.topology_privileges import RolePrivileges

pytestmark = pytest.mark.integration

ROLE = "app_user"
SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"
USER_SCHEMA = f"n.nspname NOT IN {SYSTEM_SCHEMAS} AND n.nspname NOT LIKE 'pg\\_%%'"
PUBLIC_BUILTINS = {
    "database postgres: CONNECT",
    "database postgres: TEMPORARY",
    "database template0: CONNECT",
    "database template1: CONNECT",
    "schema pg_catalog: USAGE",
    "schema information_schema: USAGE",
    "language sql: USAGE",
    "language plpgsql: USAGE",
    # PUBLIC's default on every language; c and internal are untrusted: only a superuser creates functions in them
    "language c: USAGE",
    "language internal: USAGE",
}
SYSTEM_NS = f"(SELECT oid FROM pg_namespace WHERE nspname IN {SYSTEM_SCHEMAS}) n"
TABLE = "ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']"
# (what, privilege, held) for every candidate: each query checks every privilege of every object it covers.
CHECKS = {
    "databases": "SELECT 'database ' || datname, p, has_database_privilege(%(r)s, oid, p) FROM pg_database,"
    " unnest(ARRAY['CONNECT','TEMPORARY','CREATE']) p",
    "schemas": "SELECT 'schema ' || nspname, p, has_schema_privilege(%(r)s, oid, p) FROM pg_namespace,"
    " unnest(ARRAY['USAGE','CREATE']) p",
    "tables": "SELECT 'table ' || c.relname, p, has_table_privilege(%(r)s, c.oid, p) FROM pg_class c JOIN"
    f" pg_namespace n ON n.oid = c.relnamespace, unnest({TABLE}) p"
    f" WHERE c.relkind IN ('r','p','v','m','f') AND {USER_SCHEMA}",
    "sequences": "SELECT 'sequence ' || c.relname, p, has_sequence_privilege(%(r)s, c.oid, p) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace, unnest(ARRAY['USAGE','SELECT','UPDATE']) p"
    f" WHERE c.relkind = 'S' AND {USER_SCHEMA}",
    "columns": "SELECT 'column ' || c.relname || '.' || a.attname, p,"
    " has_column_privilege(%(r)s, c.oid, a.attnum, p) AND NOT has_table_privilege(%(r)s, c.oid, p)"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid,"
    " unnest(ARRAY['SELECT','INSERT','UPDATE','REFERENCES']) p"
    f" WHERE c.relkind IN ('r','p','v','m','f') AND a.attnum > 0 AND NOT a.attisdropped AND {USER_SCHEMA}",
    "routines": "SELECT 'function ' || p.proname || '(' || oidvectortypes(p.proargtypes) || ')', 'EXECUTE',"
    " has_function_privilege(%(r)s, p.oid, 'EXECUTE') FROM pg_proc p JOIN pg_namespace n"
    f" ON n.oid = p.pronamespace WHERE {USER_SCHEMA}",
    "types": "SELECT 'type ' || t.typname, 'USAGE', has_type_privilege(%(r)s, t.oid, 'USAGE') FROM pg_type t"
    " JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_class c ON c.oid = t.typrelid"
    f" WHERE {USER_SCHEMA} AND t.typelem = 0 AND (c.oid IS NULL OR c.relkind = 'c')",
    "languages": "SELECT 'language ' || lanname, 'USAGE', has_language_privilege(%(r)s, oid, 'USAGE')"
    " FROM pg_language",
    "tablespaces": "SELECT 'tablespace ' || spcname, 'CREATE', has_tablespace_privilege(%(r)s, oid, 'CREATE')"
    " FROM pg_tablespace",
    "foreign data wrappers": "SELECT 'fdw ' || fdwname, 'USAGE',"
    " has_foreign_data_wrapper_privilege(%(r)s, oid, 'USAGE') FROM pg_foreign_data_wrapper",
    "foreign servers": "SELECT 'server ' || srvname, 'USAGE', has_server_privilege(%(r)s, oid, 'USAGE')"
    " FROM pg_foreign_server",
    "large objects": "SELECT 'large object ' || oid, 'OWNER or ACL', lomowner = %(r)s::regrole OR EXISTS"
    " (SELECT 1 FROM aclexplode(lomacl) a WHERE a.grantee IN (0, %(r)s::regrole)) FROM pg_largeobject_metadata",
    "parameters": "SELECT 'parameter ' || name, p, has_parameter_privilege(%(r)s, name, p) FROM pg_settings,"
    " unnest(ARRAY['SET','ALTER SYSTEM']) p WHERE p = 'ALTER SYSTEM' OR context IN ('superuser', 'postmaster',"
    " 'sighup', 'superuser-backend', 'backend', 'internal')",
    "default privileges": "SELECT 'default privileges of ' || d.defaclrole::regrole::text || ' on '"
    " || d.defaclobjtype::text || coalesce(' in ' || n.nspname, ''), a.privilege_type, true FROM pg_default_acl d"
    " LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a"
    " WHERE a.grantee = %(r)s::regrole",
    "role memberships": "SELECT 'member of ' || roleid::regrole::text, 'MEMBER', true FROM pg_auth_members"
    " WHERE member = %(r)s::regrole",
    "role settings": "SELECT 'setting ' || array_to_string(setconfig, ','), 'SET', true FROM pg_db_role_setting"
    " WHERE setrole = %(r)s::regrole",
    "role attributes": "SELECT 'role attribute', attr, held FROM pg_roles, LATERAL (VALUES ('SUPERUSER',"
    " rolsuper), ('CREATEROLE', rolcreaterole), ('CREATEDB', rolcreatedb), ('REPLICATION', rolreplication),"
    " ('BYPASSRLS', rolbypassrls)) v(attr, held) WHERE rolname = %(r)s",
    "catalog ACLs": "SELECT 'explicit grant in ' || cat || ' on ' || obj, a.privilege_type, true FROM ("
    f" SELECT 'pg_class', c.oid::regclass::text, c.relacl FROM pg_class c JOIN {SYSTEM_NS} ON n.oid = c.relnamespace"
    f" UNION ALL SELECT 'pg_proc', p.oid::regprocedure::text, p.proacl FROM pg_proc p JOIN {SYSTEM_NS}"
    " ON n.oid = p.pronamespace UNION ALL"
    f" SELECT 'pg_type', t.oid::regtype::text, t.typacl FROM pg_type t JOIN {SYSTEM_NS} ON n.oid = t.typnamespace"
    " UNION ALL SELECT 'pg_namespace', nspname, nspacl FROM pg_namespace UNION ALL"
    " SELECT 'pg_language', lanname, lanacl FROM pg_language UNION ALL"
    " SELECT 'pg_parameter_acl', parname, paracl FROM pg_parameter_acl UNION ALL"
    " SELECT 'pg_tablespace', spcname, spcacl FROM pg_tablespace UNION ALL"
    " SELECT 'pg_foreign_server', srvname, srvacl FROM pg_foreign_server UNION ALL"
    " SELECT 'pg_foreign_data_wrapper', fdwname, fdwacl FROM pg_foreign_data_wrapper) o(cat, obj, acl),"
    " aclexplode(o.acl) a WHERE a.grantee = %(r)s::regrole AND cat <> 'pg_namespace' OR a.grantee = %(r)s::regrole"
    " AND cat = 'pg_namespace' AND obj IN ('pg_catalog', 'information_schema', 'pg_toast')",
}


def held_privileges(url: str, role: str) -> tuple[set[str], int]:
    """Every privilege `role` holds as seen from the database of `url`, as "what: PRIVILEGE", and how many
    (object, privilege) pairs were checked."""
    held: set[str] = set()
    checked = 0
    with psycopg.connect(url) as db:
        for query in CHECKS.values():
            rows = db.execute(query, {"r": role}).fetchall()
            checked += len(rows)
            held |= {f"{what}: {privilege}" for what, privilege, has in rows if has}
    return held, checked


def allowed(allow: RolePrivileges, database: str, schema: str) -> set[str]:
    listed = {f"database {database}: {p}" for p in allow.database}
    listed |= {f"schema {schema}: {p}" for p in allow.schema_privileges}
    for kind, entries in (
        ("table", allow.tables),
        ("sequence", allow.sequences),
        ("function", allow.functions),
    ):
        listed |= {f"{kind} {name}: {p}" for name, privileges in entries.items() for p in privileges}
    return listed


def unlisted(url: str, allow: RolePrivileges) -> list[str]:
    """Tables, sequences and routines of the user schemas that the allow-list has no entry for."""
    with psycopg.connect(url) as db:
        rows: list[Any] = db.execute(
            "SELECT CASE WHEN relkind = 'S' THEN 'sequences' ELSE 'tables' END, relname FROM pg_class c"
            f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','f','S')"
            f" AND {USER_SCHEMA} UNION ALL SELECT 'functions', p.proname || '(' || oidvectortypes(p.proargtypes)"
            f" || ')' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER_SCHEMA}"
        ).fetchall()
    entries = {"tables": allow.tables, "sequences": allow.sequences, "functions": allow.functions}
    return [
        f"{kind[:-1]} {name}: no entry under [postgres.roles.{ROLE}.privileges.{kind}] in topology.toml — add"
        f" `{name if name.isidentifier() else repr(name)} = [...]` (the privileges the app uses on it, [] for none)"
        for kind, name in rows
        if name not in entries[kind]
    ]


def compare(url: str, topology: Topology, database: str) -> tuple[set[str], set[str], int]:
    allow = topology.postgres.roles[ROLE].privileges
    assert allow is not None, f"topology.toml has no [postgres.roles.{ROLE}.privileges]"
    held, checked = held_privileges(url, ROLE)
    expected = allowed(allow, database, topology.postgres.schema_name) | PUBLIC_BUILTINS
    # The harness's copies of the app database (its clone template and test clones) carry the same
    # database-level allow-list; any other database gives the role nothing.
    base = database.split("_clone_")[0]
    copies = {f"database {name}: {p}" for name in (base, f"{base}_template") for p in allow.database}
    copies |= {
        h for h in held if h.startswith(f"database {base}_clone_") and h.split(": ")[1] in allow.database
    }
    return held - expected - copies, expected - held, checked


def test_app_user_holds_exactly_its_allow_list(stack: RunningStack) -> None:
    topology = stack.topology
    url = stack.admin_database_url
    allow = topology.postgres.roles[ROLE].privileges
    assert allow is not None
    missing_entries = unlisted(url, allow)
    assert not missing_entries, "\n".join(missing_entries)
    extra, lacking, checked = compare(url, topology, topology.postgres.database)
    print(f"\nprivilege enumeration: {checked} (object, privilege) checks for {ROLE}")
    assert not extra, f"{ROLE} holds privileges its allow-list does not give: {sorted(extra)}"
    assert not lacking, f"{ROLE} lacks allow-listed privileges: {sorted(lacking)}"


def test_migration_bookkeeping_is_the_migrators_alone(stack: RunningStack) -> None:
    env = stack.env("backend")
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        for statement in (
            "SELECT version_num FROM alembic_version",
            "UPDATE alembic_version SET version_num = 'corrupted'",
            "DELETE FROM alembic_version",
            "INSERT INTO alembic_version VALUES ('corrupted')",
            "TRUNCATE alembic_version",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(statement)
    with psycopg.connect(env["MIGRATOR_DATABASE_URL"]) as db:
        assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        owner = db.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'alembic_version'")
        assert owner.fetchone() == (stack.topology.postgres.owner_role,)


def _on(topology: Topology, database: str) -> Topology:
    return topology.model_copy(
        update={"postgres": topology.postgres.model_copy(update={"database": database})}
    )


def test_extra_grants_are_revoked_and_a_table_without_an_entry_is_refused_by_name(
    stack: RunningStack, pristine_database: ClonedDatabase
) -> None:
    clone = pristine_database
    topology = _on(stack.topology, clone.name)
    # What a careless migration (or a compromised migrator) leaves behind: grants beyond the allow-list.
    with psycopg.connect(clone.migrator_url, autocommit=True) as db:
        db.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ROLE}")
        db.execute(f"GRANT UPDATE (email) ON memberships TO {ROLE}")
        db.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO {ROLE}")
        db.execute("CREATE FUNCTION leak() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    with pytest.raises(ProvisionError) as refused:
        provision_database_grants(topology, stack.postgres)
    assert "function leak() in schema public not in the privilege allow-list of app_user" in str(
        refused.value
    )
    assert f"[postgres.roles.{ROLE}.privileges.functions]" in (refused.value.hint or "")
    assert unlisted(clone.admin_url, topology.postgres.roles[ROLE].privileges or RolePrivileges()) == [
        f"function leak(): no entry under [postgres.roles.{ROLE}.privileges.functions] in topology.toml — add"
        " `'leak()' = [...]` (the privileges the app uses on it, [] for none)"
    ]
    with psycopg.connect(clone.migrator_url, autocommit=True) as db:
        db.execute("DROP FUNCTION leak()")

    changes = provision_database_grants(topology, stack.postgres)
    assert any("revoked" in c and "alembic_version" in c for c in changes), changes
    assert provision_database_grants(topology, stack.postgres) == []  # idempotent
    extra, lacking, _ = compare(clone.admin_url, topology, clone.name)
    assert not extra and not lacking, (extra, lacking)

    # A table a migration adds later gets nothing by default, and provisioning names it until it is listed.
    with psycopg.connect(clone.migrator_url, autocommit=True) as db:
        db.execute("CREATE TABLE outbox_like (id int)")
    with (
        psycopg.connect(clone.database_url, autocommit=True) as db,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        db.execute("SELECT * FROM outbox_like")
    with pytest.raises(ProvisionError) as refused:
        provision_database_grants(topology, stack.postgres)
    assert "table outbox_like in schema public" in str(refused.value)
    assert "add `outbox_like = [...]`" in (refused.value.hint or "")
