"""The database probe: queries as the app's runtime role (`app_user`) under one tenant's RLS context.

Local target only: a deployed database is in private subnets. Every query runs in a read-only transaction that
first sets `app.tenant_id` transaction-locally, exactly like the app does (app/db.py), so a probe sees what the
app would see for that tenant and nothing more. Cleanup of a run's tenants goes through the same role.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row

SET_TENANT = "SELECT set_config('app.tenant_id', %(tenant_id)s, true)"


class AppUserDatabase:
    """Read-only queries and tenant cleanup as `app_user` (the `DATABASE_URL` of the env contract)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._connection: psycopg.Connection[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.database_url, row_factory=dict_row, connect_timeout=5)
        return self._connection

    def query(self, tenant_id: str, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Rows of `sql` (psycopg `%(name)s` parameters) as tenant `tenant_id`, values made JSON-like."""
        with self._lock:
            connection = self._connect()
            try:
                with connection.transaction(), connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION READ ONLY")
                    cursor.execute(SET_TENANT, {"tenant_id": tenant_id})
                    # bytes: the SQL comes from a scenario file, not a literal; no params: a % needs no escaping
                    cursor.execute(sql.encode(), dict(params) or None)
                    rows = cursor.fetchall() if cursor.description else []
            except psycopg.OperationalError:
                self.close()
                raise
        return [{key: plain(value) for key, value in row.items()} for row in rows]

    def tenants_of(self, user_subs: Iterable[str]) -> set[str]:
        """Tenant ids these users are members of (through the app's own SECURITY DEFINER function)."""
        found: set[str] = set()
        with self._lock:
            connection = self._connect()
            with connection.transaction(), connection.cursor() as cursor:
                for sub in user_subs:
                    cursor.execute("SELECT tenant_id FROM app_memberships_of(%(sub)s)", {"sub": sub})
                    found.update(str(row["tenant_id"]) for row in cursor.fetchall())
        return found

    def delete_tenant(self, tenant_id: str) -> int:
        """Delete a tenant (its rows cascade), in its own RLS context; returns 1 if it existed."""
        with self._lock:
            connection = self._connect()
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute(SET_TENANT, {"tenant_id": tenant_id})
                cursor.execute("DELETE FROM tenants WHERE id = %(id)s", {"id": tenant_id})
                return cursor.rowcount

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


def plain(value: Any) -> Any:
    """A database value as JSON-like data (uuid, datetimes and decimals as text or numbers)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value
