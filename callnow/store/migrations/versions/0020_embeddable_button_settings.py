"""The embeddable button: the sites allowed to frame a page, the button's label, colour, place

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 08:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("embed_origins", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "embed_label", sa.String(length=40), server_default="Call me back", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("embed_colour", sa.String(length=7), server_default="#0b62c4", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "embed_position",
                sa.String(length=16),
                server_default="bottom-right",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_column("embed_position")
        batch_op.drop_column("embed_colour")
        batch_op.drop_column("embed_label")
        batch_op.drop_column("embed_origins")
