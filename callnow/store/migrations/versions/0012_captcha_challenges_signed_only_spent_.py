"""CAPTCHA challenges are signed, not stored: keep only spent nonces

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 05:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import callnow.store.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spent_captchas",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("spent_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_spent_captchas")),
    )
    with op.batch_alter_table("spent_captchas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spent_captchas_spent_at"), ["spent_at"], unique=False)
    # Open challenges were only good for a few minutes; visitors holding one get a new picture.
    with op.batch_alter_table("captcha_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_captcha_challenges_profile_id"))
        batch_op.drop_index(batch_op.f("ix_captcha_challenges_expires_at"))
    op.drop_table("captcha_challenges")


def downgrade() -> None:
    op.create_table(
        "captcha_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("answer_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", callnow.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("used_at", callnow.store.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name=op.f("fk_captcha_challenges_profile_id_profiles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captcha_challenges")),
        sa.UniqueConstraint("token", name=op.f("uq_captcha_challenges_token")),
    )
    with op.batch_alter_table("captcha_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_captcha_challenges_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_captcha_challenges_profile_id"), ["profile_id"], unique=False
        )
    with op.batch_alter_table("spent_captchas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spent_captchas_spent_at"))
    op.drop_table("spent_captchas")
