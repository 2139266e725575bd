"""An owner whose phone answered busy is not rung again before `extensions.busy_until`

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 17:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("busy_until", callnow.store.models.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.drop_column("busy_until")
