"""Transactional outbox: a side effect's intent commits with the row that causes it.

`outbox` holds one row per intended side effect (an email, a tenant's object purge): the Celery task name and
the id of the row it acts on (`subject_id`; the tenant itself for a purge). The backend inserts it in the
same transaction as the order / donation / invite / tenant deletion, then queues the task after the commit
(the fast path). The task stamps `done_at` in the transaction that records its effect. The worker's relay
(`app/outbox.py`) queues again every row still not done `republish_after` seconds after it was last queued:
a publish that failed (Redis down), a backend that died between commit and publish, or a message a frozen or
killed worker took off the queue without recording it as unacknowledged.

Like every tenant table, `outbox` is under forced RLS (`tenant_isolation`). `tenant_id` has no foreign key:
the purge intent must outlive the tenant row it is written with. The relay reads across tenants through one
SECURITY DEFINER function, `app_outbox_claim`, owned by the migrator, which reaches the rows through the
owner-only policy `outbox_relay` (as revision 0002 does for membership lookup). The runtime role inserts and
stamps rows (SELECT, INSERT, UPDATE); it never deletes them — `app_outbox_claim` prunes done rows after a week.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRUNE_DONE_AFTER = "7 days"


def _runtime_role() -> str:
    role = op.get_context().config.attributes.get("runtime_role", "app_user")  # type: ignore[union-attr]
    return '"' + str(role).replace('"', '""') + '"'


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("task", sa.String(128), nullable=False),
        sa.Column("subject_id", UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("publish_count", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("task", "subject_id", name="outbox_one_intent_per_subject"),
    )
    op.create_index("ix_outbox_tenant_id", "outbox", ["tenant_id"])
    # The relay's scan: rows not done, oldest publish first.
    op.create_index(
        "ix_outbox_pending", "outbox", ["published_at"], postgresql_where=sa.text("done_at IS NULL")
    )
    role = _runtime_role()
    op.execute(
        f"""
        ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
        ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON outbox
            USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
        CREATE POLICY outbox_relay ON outbox TO CURRENT_USER USING (true) WITH CHECK (true);
        REVOKE ALL ON outbox FROM {role};
        GRANT SELECT, INSERT, UPDATE ON outbox TO {role};

        CREATE FUNCTION app_outbox_claim(p_limit integer, p_republish_after_seconds double precision)
        RETURNS TABLE (tenant_id uuid, task text, subject_id uuid, publish_count integer)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
        AS $$
            WITH pruned AS (
                DELETE FROM outbox WHERE done_at < now() - interval '{PRUNE_DONE_AFTER}'
            ), due AS (
                SELECT id FROM outbox
                WHERE done_at IS NULL
                  AND published_at < now() - make_interval(secs => p_republish_after_seconds)
                ORDER BY published_at
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox o SET published_at = now(), publish_count = o.publish_count + 1
            FROM due WHERE o.id = due.id
            RETURNING o.tenant_id, o.task::text, o.subject_id, o.publish_count
        $$;
        REVOKE ALL ON FUNCTION app_outbox_claim(integer, double precision) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION app_outbox_claim(integer, double precision) TO {role};
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION app_outbox_claim(integer, double precision)")
    op.drop_table("outbox")
