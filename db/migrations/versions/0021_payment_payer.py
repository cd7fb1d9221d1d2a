"""payment.payer: the M-Pesa number that paid, which a refund (a B2C payment) goes back to

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payment", sa.Column("payer", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("payment", "payer")
