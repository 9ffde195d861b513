"""Initial multi-tenant schema with forced row-level security.

Every table is under RLS (enabled AND forced) with one policy on `app_current_tenant()`, i.e.
`current_setting('app.tenant_id', true)`: with no tenant set the runtime role sees and writes nothing.
Two SECURITY DEFINER functions answer the only questions asked before a tenant is known: "which tenants is
this Cognito user a member of" and "is this user a member of tenant <slug>" (owned by the migrator, which
reads every membership through the policy of revision 0002; they return only the caller-named user's own
memberships).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_SCOPED_TABLES = (
    "memberships",
    "catalog_items",
    "orders",
    "donations",
    "invites",
    "media_objects",
    "ai_usage",
)
ROLE_CHECK = "role IN ('owner', 'admin', 'member')"


def _runtime_role() -> str:
    role = op.get_context().config.attributes.get("runtime_role", "app_user")  # type: ignore[union-attr]
    return '"' + str(role).replace('"', '""') + '"'


def _id() -> sa.Column[object]:
    return sa.Column("id", UUID(as_uuid=True), primary_key=True)


def _tenant_id() -> sa.Column[object]:
    return sa.Column(
        "tenant_id", UUID(as_uuid=True), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "tenants",
        _id(),
        sa.Column("slug", sa.String(63), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ai_soft_limit_tokens", sa.BigInteger()),
        sa.Column("ai_hard_limit_tokens", sa.BigInteger()),
        _created_at(),
        sa.CheckConstraint("slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'", name="slug_format"),
    )
    op.create_table(
        "memberships",
        _id(),
        _tenant_id(),
        sa.Column("user_sub", sa.String(128), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _created_at(),
        sa.UniqueConstraint("tenant_id", "user_sub"),
        sa.UniqueConstraint("tenant_id", "email"),
        sa.CheckConstraint(ROLE_CHECK, name="role_known"),
    )
    op.create_index("ix_memberships_user_sub", "memberships", ["user_sub"])
    op.create_table(
        "catalog_items",
        _id(),
        _tenant_id(),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "sku"),
        sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),
    )
    op.create_table(
        "orders",
        _id(),
        _tenant_id(),
        sa.Column("user_sub", sa.String(128), nullable=False),
        sa.Column("buyer_email", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="placed"),
        sa.Column("items", JSONB(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("confirmation_sent_at", sa.DateTime(timezone=True)),
        sa.Column("confirmation_message_id", sa.String(200)),
        _created_at(),
    )
    op.create_table(
        "donations",
        _id(),
        _tenant_id(),
        sa.Column("user_sub", sa.String(128), nullable=False),
        sa.Column("donor_email", sa.String(320), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("receipt_sent_at", sa.DateTime(timezone=True)),
        sa.Column("receipt_message_id", sa.String(200)),
        _created_at(),
        sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
    )
    op.create_table(
        "invites",
        _id(),
        _tenant_id(),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("invited_by", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_by", sa.String(128)),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("message_id", sa.String(200)),
        _created_at(),
        sa.CheckConstraint(ROLE_CHECK, name="role_known"),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'revoked')", name="status_known"),
    )
    op.create_table(
        "media_objects",
        _id(),
        _tenant_id(),
        sa.Column("key", sa.String(1024), nullable=False, unique=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("uploaded_by", sa.String(128), nullable=False),
        _created_at(),
    )
    op.create_table(
        "ai_usage",
        _id(),
        _tenant_id(),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("requests", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "period"),
    )
    for table in TENANT_SCOPED_TABLES:
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])

    # NULLIF: once set in a session, an ended SET LOCAL reads back as '' rather than NULL.
    op.execute(
        """
        CREATE FUNCTION app_current_tenant() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$
        """
    )
    op.execute(
        """
        ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
        ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON tenants
            USING (id = app_current_tenant()) WITH CHECK (id = app_current_tenant());
        """
    )
    for table in TENANT_SCOPED_TABLES:
        op.execute(
            f"""
            ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
            ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON {table}
                USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
            """
        )

    op.execute(
        """
        CREATE FUNCTION app_memberships_of(p_user_sub text)
        RETURNS TABLE (tenant_id uuid, tenant_slug text, tenant_name text, role text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
        AS $$
            SELECT t.id, t.slug::text, t.name::text, m.role::text
            FROM tenants t JOIN memberships m ON m.tenant_id = t.id
            WHERE m.user_sub = p_user_sub
            ORDER BY t.slug
        $$;
        CREATE FUNCTION app_resolve_membership(p_slug text, p_user_sub text)
        RETURNS TABLE (tenant_id uuid, tenant_slug text, tenant_name text, role text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
        AS $$ SELECT * FROM app_memberships_of(p_user_sub) m WHERE m.tenant_slug = p_slug $$;
        REVOKE ALL ON FUNCTION app_memberships_of(text) FROM PUBLIC;
        REVOKE ALL ON FUNCTION app_resolve_membership(text, text) FROM PUBLIC;
        """
    )

    role = _runtime_role()
    tables = ", ".join(("tenants", *TENANT_SCOPED_TABLES))
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {role}")
    op.execute(f"GRANT EXECUTE ON FUNCTION app_memberships_of(text) TO {role}")
    op.execute(f"GRANT EXECUTE ON FUNCTION app_resolve_membership(text, text) TO {role}")
    # Tables and sequences later migrations create are usable by the runtime role without extra GRANTs.
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}")


def downgrade() -> None:
    role = _runtime_role()
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {role}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {role}")
    op.execute("DROP FUNCTION app_resolve_membership(text, text)")
    op.execute("DROP FUNCTION app_memberships_of(text)")
    for table in reversed(("tenants", *TENANT_SCOPED_TABLES)):
        op.drop_table(table)
    op.execute("DROP FUNCTION app_current_tenant()")
