"""The runtime role's privileges as an allow-list: exactly what `[postgres.roles.<role>.privileges]` says.

Provisioning (and, after every migration, `apply_privileges` again) makes each runtime role hold exactly the
allow-listed privileges on the app's database, schema, tables, sequences and routines, and nothing else:

- missing privileges are granted, extra ones (migrations' GRANTs, column grants, PUBLIC's) revoked;
- routines lose PUBLIC's default EXECUTE; default privileges give the runtime role nothing on objects the
  migrator creates later, so a new table is unusable until the allow-list names it;
- a table, sequence or routine of the schema that the allow-list does not name is an error (the migration
  that made it must say what the app may do with it: `[]` for nothing), raised before anything changes.

Everything runs as the schema owner (`SET ROLE` by the caller), so RDS's master user can do it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from harness.errors import ProvisionError
from harness.topology_privileges import (
    DEFAULT_ACL_KINDS,
    RolePrivileges,
)

if TYPE_CHECKING:
    from harness.topology import Topology

OBJECT_TYPES = {"tables": "TABLE", "sequences": "SEQUENCE", "functions": "ROUTINE"}


def _key(role: str, section: str) -> str:
    return f"[postgres.roles.{role}.privileges.{section}]"


def _schema_objects(db: psycopg.Connection, schema: str, role: str) -> list[tuple[str, str, set[str], bool]]:
    """(kind, name, the role's explicit privileges, whether PUBLIC holds any) for every table, view, sequence
    and routine of `schema`; kind is "tables", "sequences" or "functions"."""
    rows = db.execute(
        """
        SELECT CASE WHEN c.relkind = 'S' THEN 'sequences' ELSE 'tables' END, c.relname::text,
               ARRAY(SELECT a.privilege_type FROM aclexplode(c.relacl) a WHERE a.grantee = r.oid)
               || ARRAY(SELECT DISTINCT 'column ' || a.privilege_type FROM pg_attribute att,
                        aclexplode(att.attacl) a WHERE att.attrelid = c.oid AND a.grantee = r.oid),
               EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, pg_roles r
        WHERE n.nspname = %(schema)s AND r.rolname = %(role)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        UNION ALL
        SELECT 'functions', p.proname || '(' || oidvectortypes(p.proargtypes) || ')',
               ARRAY(SELECT a.privilege_type FROM aclexplode(p.proacl) a WHERE a.grantee = r.oid),
               p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, pg_roles r
        WHERE n.nspname = %(schema)s AND r.rolname = %(role)s
        ORDER BY 1, 2
        """,
        {"schema": schema, "role": role},
    ).fetchall()
    return [(kind, name, set(privileges), bool(public)) for kind, name, privileges, public in rows]


def unlisted_objects(
    objects: Iterable[tuple[str, str]], allow: RolePrivileges, role: str
) -> list[tuple[str, str, str]]:
    """(kind, name, how to fix it) for each object of the schema the allow-list does not name."""
    listed: Mapping[str, Mapping[str, object]] = {
        "tables": allow.tables,
        "sequences": allow.sequences,
        "functions": allow.functions,
    }
    return [
        (kind, name, f"add `{_toml_key(name)} = [...]` under {_key(role, kind)} in topology.toml")
        for kind, name in objects
        if name not in listed[kind]
    ]


def _toml_key(name: str) -> str:
    return name if name.replace("_", "").isalnum() else f'"{name}"'


def apply_privileges(db: psycopg.Connection, topology: Topology) -> list[str]:
    """Make every runtime role's privileges in `db` (connected to the app's database, acting as the schema
    owner) exactly its allow-list. Returns the changes made (none on a second run)."""
    pg = topology.postgres
    schema, owner = pg.schema_name, pg.owner_role
    changes: list[str] = []

    def execute(statement: sql.Composed, change: str) -> None:
        db.execute(statement)
        changes.append(f"postgres: {change}")

    runtime = {
        name: role.privileges or RolePrivileges() for name, role in pg.roles.items() if not role.owns_schema
    }
    plans = {name: _schema_objects(db, schema, name) for name in runtime}
    for name, allow in runtime.items():
        missing = unlisted_objects(((kind, obj) for kind, obj, _, _ in plans[name]), allow, name)
        if missing:
            listed = ", ".join(f"{kind[:-1]} {obj}" for kind, obj, _ in missing)
            raise ProvisionError(
                f"postgres: {listed} in schema {schema} not in the privilege allow-list of {name}: "
                "every table, sequence and routine needs an entry (the privileges the app uses on it)",
                hint="; ".join(fix for _, _, fix in missing) + ' — `[]` for none, e.g. ["SELECT", "INSERT"]',
            )
    schema_id, owner_id = sql.Identifier(schema), sql.Identifier(owner)
    # PUBLIC holds nothing on the schema's objects (routines: not even PostgreSQL's default EXECUTE).
    for kind, obj, _, public in next(iter(plans.values()), []):
        if public:
            execute(
                sql.SQL("REVOKE ALL ON {} {}.{} FROM PUBLIC").format(
                    sql.SQL(OBJECT_TYPES[kind]), schema_id, _object_sql(obj, kind)
                ),
                f"revoked PUBLIC's privileges on {OBJECT_TYPES[kind].lower()} {obj}",
            )
    for name, allow in runtime.items():
        role_id = sql.Identifier(name)
        entries: dict[str, Mapping[str, tuple[str, ...]]] = {
            "tables": allow.tables,
            "sequences": allow.sequences,
            "functions": allow.functions,
        }
        for kind, obj, have, _ in plans[name]:
            objtype = OBJECT_TYPES[kind]
            want = set(entries[kind][obj])
            target = sql.SQL("{} {}.{}").format(sql.SQL(objtype), schema_id, _object_sql(obj, kind))
            columns = {p.removeprefix("column ") for p in have if p.startswith("column ")}
            table_level = {p for p in have if not p.startswith("column ")}
            # Revoking a table-level privilege revokes it on every column too.
            extra = (table_level - want) | columns
            if extra:
                execute(
                    sql.SQL("REVOKE {} ON {} FROM {}").format(_privileges(extra), target, role_id),
                    f"revoked {', '.join(sorted(extra))} on {objtype.lower()} {obj} from {name}",
                )
            grant = want - (table_level - extra)
            if grant:
                execute(
                    sql.SQL("GRANT {} ON {} TO {}").format(_privileges(grant), target, role_id),
                    f"granted {', '.join(sorted(grant))} on {objtype.lower()} {obj} to {name}",
                )
        for objtype, wanted, check in (
            (
                "DATABASE",
                set(allow.database),
                ("pg_database", "datacl", "datname", pg.database),
            ),
            (
                "SCHEMA",
                set(allow.schema_privileges),
                ("pg_namespace", "nspacl", "nspname", schema),
            ),
        ):
            have = _explicit(db, name, *check)
            target = sql.SQL("{} {}").format(sql.SQL(objtype), sql.Identifier(check[3]))
            if have - wanted:
                execute(
                    sql.SQL("REVOKE {} ON {} FROM {}").format(_privileges(have - wanted), target, role_id),
                    f"revoked {', '.join(sorted(have - wanted))} on {objtype.lower()} {check[3]} from {name}",
                )
            if wanted - have:
                execute(
                    sql.SQL("GRANT {} ON {} TO {}").format(_privileges(wanted - have), target, role_id),
                    f"granted {', '.join(sorted(wanted - have))} on {objtype.lower()} {check[3]} to {name}",
                )
        # Objects the owner creates later give this role nothing until the allow-list names them.
        for namespace, code in db.execute(
            "SELECT n.nspname, d.defaclobjtype::text FROM pg_default_acl d LEFT JOIN pg_namespace n"
            " ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a, pg_roles r"
            " WHERE d.defaclrole = %s::regrole AND r.rolname = %s AND a.grantee = r.oid",
            (owner, name),
        ).fetchall():
            where = sql.SQL(" IN SCHEMA {}").format(sql.Identifier(namespace)) if namespace else sql.SQL("")
            execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} REVOKE ALL ON {} FROM {}").format(
                    owner_id, where, sql.SQL(DEFAULT_ACL_KINDS[code]), role_id
                ),
                f"default privileges of {owner} on new {DEFAULT_ACL_KINDS[code].lower()} no longer grant {name}"
                " anything",
            )
    # New routines are not executable by PUBLIC (PostgreSQL's default) either.
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a WHERE d.defaclrole ="
        " %s::regrole AND d.defaclnamespace = 0 AND d.defaclobjtype = 'f' AND a.grantee <> 0)"
        " AND NOT EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a WHERE d.defaclrole ="
        " %s::regrole AND d.defaclobjtype = 'f' AND a.grantee = 0)",
        (owner, owner),
    ).fetchone()
    if not (row and row[0]):
        execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC").format(
                owner_id
            ),
            f"new routines of {owner} are no longer executable by PUBLIC",
        )
    return changes


def _explicit(
    db: psycopg.Connection, role: str, catalog: str, column: str, name_column: str, name: str
) -> set[str]:
    row = db.execute(
        sql.SQL(
            "SELECT ARRAY(SELECT a.privilege_type FROM aclexplode(o.{}) a WHERE a.grantee = %s::regrole)"
            " FROM {} o WHERE o.{} = %s"
        ).format(sql.Identifier(column), sql.Identifier(catalog), sql.Identifier(name_column)),
        (role, name),
    ).fetchone()
    return set(row[0]) if row else set()


def _privileges(names: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL(p) for p in sorted(names))


def _object_sql(name: str, kind: str) -> sql.Composable:
    """A table's identifier, or a routine's `name(argument types)` (types as Postgres printed them)."""
    if kind != "functions":
        return sql.Identifier(name)
    routine, _, arguments = name.partition("(")
    return sql.SQL("{}({}").format(sql.Identifier(routine), sql.SQL(arguments))
