"""An owner's own daily cap, set in the portal, below their provider's

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 07:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_daily_cap_minor", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.drop_column("owner_daily_cap_minor")
