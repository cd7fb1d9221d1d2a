"""ix_booking_canceled_start: cancelled stays whose hosts may be owed the share the guest kept

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_booking_canceled_start",
        "booking",
        ["starts_at"],
        postgresql_where=sa.text("status = 'CANCELED'"),
    )


def downgrade() -> None:
    op.drop_index("ix_booking_canceled_start", table_name="booking")
