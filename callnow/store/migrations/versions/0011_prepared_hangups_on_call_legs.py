"""Prepared hangups on call legs: what ends a leg whose engine died

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 03:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sip_call_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("media_call_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hangup_method", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("hangup_message", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("hangup_host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("hangup_port", sa.Integer(), nullable=True))
        # Engines look for legs left open and for recently ended ones left unbilled.
        batch_op.create_index(batch_op.f("ix_call_legs_ended_at"), ["ended_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_legs_ended_at"))
        batch_op.drop_column("hangup_port")
        batch_op.drop_column("hangup_host")
        batch_op.drop_column("hangup_message")
        batch_op.drop_column("hangup_method")
        batch_op.drop_column("media_call_id")
        batch_op.drop_column("sip_call_id")
