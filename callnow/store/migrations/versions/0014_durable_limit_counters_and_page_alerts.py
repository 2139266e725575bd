"""Durable limit counters without Redis; page alerts; webhook deliveries without a request

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 07:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("hit_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_hits")),
    )
    with op.batch_alter_table("limit_hits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_limit_hits_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(
            "ix_limit_hits_rule_key_hit_at", ["rule", "key", "hit_at"], unique=False
        )
    op.create_table(
        "page_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("created_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("until", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", callnow.store.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_page_alerts_profile_id_profiles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_alerts")),
    )
    with op.batch_alter_table("page_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_page_alerts_profile_id"), ["profile_id"], unique=False)
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("request_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("request_event_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE request_id IS NULL")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("request_event_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("request_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("page_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_page_alerts_profile_id"))
    op.drop_table("page_alerts")
    with op.batch_alter_table("limit_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_limit_hits_rule_key_hit_at")
        batch_op.drop_index(batch_op.f("ix_limit_hits_expires_at"))
    op.drop_table("limit_hits")
