"""booking.display_currency and display_rate: the exchange rate frozen when the guest paid

Revision ID: 0017
Revises: 0013
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("booking", sa.Column("display_currency", sa.Text(), nullable=True))
    op.add_column("booking", sa.Column("display_rate", sa.Numeric(), nullable=True))
    op.create_check_constraint(
        op.f("ck_booking_display_rate"),
        "booking",
        "(display_currency IS NULL) = (display_rate IS NULL) AND display_rate > 0",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_booking_display_rate"), "booking", type_="check")
    op.drop_column("booking", "display_rate")
    op.drop_column("booking", "display_currency")
