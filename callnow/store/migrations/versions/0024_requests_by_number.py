"""A page's requests by number: each new request asks for its number's standing

Without it that question read every request the page ever had, growing with its history.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 15:30:00.000000
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_call_requests_profile_number", "call_requests", ["profile_id", "number_e164"]
    )


def downgrade() -> None:
    op.drop_index("ix_call_requests_profile_number", table_name="call_requests")
