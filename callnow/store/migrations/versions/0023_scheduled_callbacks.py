"""Scheduled callbacks: a request may wait for a booked slot; owners choose whether and how

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 11:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "scheduled_for", callnow.store.models.UtcDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index("ix_call_requests_scheduled", ["profile_id", "scheduled_for"])
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scheduling_enabled", sa.Boolean(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column("scheduling_days_ahead", sa.Integer(), nullable=False, server_default="7")
        )
        batch_op.add_column(
            sa.Column("scheduling_per_slot", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_column("scheduling_per_slot")
        batch_op.drop_column("scheduling_days_ahead")
        batch_op.drop_column("scheduling_enabled")
    with op.batch_alter_table("call_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_call_requests_scheduled")
        batch_op.drop_column("scheduled_for")
