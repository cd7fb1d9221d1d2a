"""payment.check_at: when to ask the provider where a waiting payment stands

A payment the guest completes with the provider (Stripe.js in the browser) is confirmed by the
provider's webhook; when none comes, a worker asks the provider from ``check_at`` on.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payment", sa.Column("check_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_payment_check_at",
        "payment",
        ["check_at"],
        postgresql_where=sa.text("status IN ('PENDING', 'AUTHORIZED') AND check_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_payment_check_at", table_name="payment")
    op.drop_column("payment", "check_at")
