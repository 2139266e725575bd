"""Retired CallNow IDs keep leading to their page and stay held from others

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 07:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_callnow_ids",
        sa.Column("callnow_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("retired_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("held_until", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_retired_callnow_ids_profile_id_profiles")
        ),
        sa.PrimaryKeyConstraint("callnow_id", name=op.f("pk_retired_callnow_ids")),
    )
    with op.batch_alter_table("retired_callnow_ids", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retired_callnow_ids_profile_id"), ["profile_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("retired_callnow_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retired_callnow_ids_profile_id"))
    op.drop_table("retired_callnow_ids")
