"""Server-side sessions for the portal and the admin, so logging out ends them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 07:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("realm", sa.String(length=10), nullable=False),
        sa.Column("csrf_key", sa.String(length=32), nullable=False),
        sa.Column("created_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", callnow.store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.CheckConstraint("realm IN ('portal', 'admin')", name=op.f("ck_web_sessions_realm")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_user_id"))
    op.drop_table("web_sessions")
