"""A visitor may leave one message on a request whose call could not happen

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 08:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("message_at", callnow.store.models.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("call_requests", schema=None) as batch_op:
        batch_op.drop_column("message_at")
        batch_op.drop_column("message")
