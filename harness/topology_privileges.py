"""`[postgres.roles.<role>.privileges]`: the allow-list of a runtime role (applied by
harness/provision/privileges.py, checked by tests/integration/test_privilege_allowlist.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

TablePrivilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]
SequencePrivilege = Literal["USAGE", "SELECT", "UPDATE"]
TABLE_PRIVILEGES: tuple[str, ...] = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
)
SEQUENCE_PRIVILEGES: tuple[str, ...] = ("USAGE", "SELECT", "UPDATE")
DATABASE_PRIVILEGES: tuple[str, ...] = ("CONNECT", "TEMPORARY", "CREATE")
SCHEMA_PRIVILEGES: tuple[str, ...] = ("USAGE", "CREATE")
# pg_default_acl.defaclobjtype -> the ALTER DEFAULT PRIVILEGES object kind
DEFAULT_ACL_KINDS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


class RolePrivileges(BaseModel):
    """`[postgres.roles.<role>.privileges]`: every privilege the role holds, per object; nothing else."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    database: tuple[Literal["CONNECT", "TEMPORARY", "CREATE"], ...] = ("CONNECT",)
    schema_privileges: Annotated[tuple[Literal["USAGE", "CREATE"], ...], Field(alias="schema")] = ("USAGE",)
    tables: dict[str, tuple[TablePrivilege, ...]] = {}
    sequences: dict[str, tuple[SequencePrivilege, ...]] = {}
    # keyed `name(argument types)`, as `oidvectortypes` spells them: "app_resolve_membership(text, text)"
    functions: dict[str, tuple[Literal["EXECUTE"], ...]] = {}
