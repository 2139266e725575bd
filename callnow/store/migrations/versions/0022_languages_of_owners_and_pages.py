"""Languages: the owner's own (portal, e-mails, spoken prompts) and those a page offers visitors

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 11:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sa.String(length=8), nullable=False, server_default="en")
        )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        # Empty: the page offers every language CallNow ships.
        batch_op.add_column(
            sa.Column("languages", sa.String(length=80), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("default_language", sa.String(length=8), nullable=False, server_default="en")
        )


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_column("default_language")
        batch_op.drop_column("languages")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("language")
