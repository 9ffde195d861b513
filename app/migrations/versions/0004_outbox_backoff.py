"""Outbox relay backoff: an intent is queued again after `republish_after` seconds, then twice as long each
time (capped at 32 x), and the claim skips nothing else.

Without it a backlog longer than `republish_after` (a worker down or slow for a while) had every pending
intent queued again every interval, so duplicates grew faster than a worker could drain them (each one is
harmless — the tasks are idempotent — but they delayed the intents that still needed sending).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_DOUBLINGS = 5


def _claim(wait: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION app_outbox_claim(p_limit integer, p_republish_after_seconds double precision)
        RETURNS TABLE (tenant_id uuid, task text, subject_id uuid, publish_count integer)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
        AS $$
            WITH pruned AS (
                DELETE FROM outbox WHERE done_at < now() - interval '7 days'
            ), due AS (
                SELECT id FROM outbox
                WHERE done_at IS NULL
                  AND published_at < now() - make_interval(secs => {wait})
                ORDER BY published_at
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox o SET published_at = now(), publish_count = o.publish_count + 1
            FROM due WHERE o.id = due.id
            RETURNING o.tenant_id, o.task::text, o.subject_id, o.publish_count
        $$;
    """


def upgrade() -> None:
    op.execute(_claim(f"p_republish_after_seconds * power(2, least(publish_count - 1, {MAX_DOUBLINGS}))"))


def downgrade() -> None:
    op.execute(_claim("p_republish_after_seconds"))
