"""Provider API: scoped tokens, the log of their uses, and suspended tenants and pages

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-03 07:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("created_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", callnow.store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", callnow.store.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_provider_tokens_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_tokens")),
        sa.UniqueConstraint("token_id", name=op.f("uq_provider_tokens_token_id")),
    )
    with op.batch_alter_table("provider_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_tokens_tenant_id"), ["tenant_id"])
    op.create_table(
        "provider_token_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=120), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("source_address", sa.String(length=45), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["provider_tokens.id"],
            name=op.f("fk_provider_token_uses_token_id_provider_tokens"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_token_uses")),
    )
    with op.batch_alter_table("provider_token_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_token_uses_token_id"), ["token_id"])
        batch_op.create_index(batch_op.f("ix_provider_token_uses_at"), ["at"])
    for table in ("tenants", "profiles"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "suspended_at",
                    callnow.store.models.UtcDateTime(timezone=True),
                    nullable=True,
                )
            )


def downgrade() -> None:
    for table in ("profiles", "tenants"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("suspended_at")
    with op.batch_alter_table("provider_token_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_token_uses_at"))
        batch_op.drop_index(batch_op.f("ix_provider_token_uses_token_id"))
    op.drop_table("provider_token_uses")
    with op.batch_alter_table("provider_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_tokens_tenant_id"))
    op.drop_table("provider_tokens")
