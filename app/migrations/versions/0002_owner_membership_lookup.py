"""Membership lookup without BYPASSRLS: the schema owner may read tenants and memberships.

`app_memberships_of` / `app_resolve_membership` are SECURITY DEFINER functions owned by the migrator. With
RLS forced, the owner is subject to the tenant policy too, so before this revision they worked only because
the migrator had BYPASSRLS — which RDS's master user cannot grant (PostgreSQL 16: only superusers and roles
with BYPASSRLS may). A SELECT-only policy for the owner role on these two tables gives the functions what they
need and nothing more: the runtime role gains nothing (it can only call the functions, which return the
caller-named user's own memberships), and the owner could disable RLS on its tables anyway.

Data migrations (the owner changing rows of every tenant) do not rely on a bypass either: inside the
migration's transaction, `ALTER TABLE … NO FORCE ROW LEVEL SECURITY`, change the rows, then `FORCE` again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOOKUP_TABLES = ("tenants", "memberships")


def upgrade() -> None:
    for table in LOOKUP_TABLES:
        # CURRENT_USER: the role running the migrations, i.e. the owner of the tables and of the functions.
        op.execute(
            f"CREATE POLICY owner_membership_lookup ON {table} FOR SELECT TO CURRENT_USER USING (true)"
        )


def downgrade() -> None:
    for table in LOOKUP_TABLES:
        op.execute(f"DROP POLICY owner_membership_lookup ON {table}")
