"""payment.check_at also for payments let go whose cancellation the provider refused

``check_at`` is now cleared whenever the provider's word is in, so the partial index keeps only
payments to ask about, whatever their status.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = "status IN ('PENDING', 'AUTHORIZED')"


def upgrade() -> None:
    op.execute(
        sa.text("UPDATE payment SET check_at = NULL WHERE status NOT IN ('PENDING', 'AUTHORIZED')")
    )
    op.drop_index("ix_payment_check_at", table_name="payment")
    op.create_index(
        "ix_payment_check_at",
        "payment",
        ["check_at"],
        postgresql_where=sa.text("check_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_payment_check_at", table_name="payment")
    op.create_index(
        "ix_payment_check_at",
        "payment",
        ["check_at"],
        postgresql_where=sa.text(f"{WAITING} AND check_at IS NOT NULL"),
    )
