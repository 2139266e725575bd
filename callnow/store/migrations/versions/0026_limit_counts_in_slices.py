"""Limit counters kept as hits per time slice, not a row per hit

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 10:00:00.000000

The hits counted so far are not carried over: putting them into slices needs each rule's
windows, which live in the configuration, not here. Counts start again from zero once.
`limit_hits` stays for now, so the processes of the previous version keep counting until a
rolling upgrade has replaced them; a later migration drops it.
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_counts",
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("window_s", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("slot", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule", "key", "window_s", "slot", name=op.f("pk_limit_counts")),
    )
    with op.batch_alter_table("limit_counts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_limit_counts_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("limit_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_limit_counts_expires_at"))
    op.drop_table("limit_counts")
