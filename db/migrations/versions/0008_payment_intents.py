"""payment intents: a ledger entry is written REQUESTED before the provider is asked

Each entry gains its status (REQUESTED, then SUCCEEDED or FAILED), when it was asked for and
answered, the provider's error, what its answer completes on the booking (``effect``), and
when the worker asks again if no answer was applied (``retry_at``, indexed while REQUESTED).
Every entry before this revision recorded a movement that had happened: SUCCEEDED.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "payment_operation"


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("status", sa.Text(), server_default="SUCCEEDED", nullable=False))
    op.alter_column(TABLE, "status", server_default=None)  # every writer names the status
    op.create_check_constraint(
        op.f("ck_payment_operation_status"), TABLE, "status IN ('REQUESTED', 'SUCCEEDED', 'FAILED')"
    )
    op.add_column(TABLE, sa.Column("effect", postgresql.JSONB(), nullable=True))
    for name in ("requested_at", "retry_at", "completed_at"):
        op.add_column(TABLE, _timestamp(name))
    op.add_column(TABLE, sa.Column("error", sa.Text(), nullable=True))
    op.execute(
        sa.text("UPDATE payment_operation SET requested_at = created_at, completed_at = created_at")
    )
    op.alter_column(TABLE, "requested_at", nullable=False)
    op.create_index(
        "ix_payment_operation_retry",
        TABLE,
        ["retry_at"],
        postgresql_where=sa.text("status = 'REQUESTED'"),
    )


def downgrade() -> None:
    op.drop_index("ix_payment_operation_retry", table_name=TABLE)
    # Before this revision the ledger held only movements that happened.
    op.execute(sa.text("DELETE FROM payment_operation WHERE status <> 'SUCCEEDED'"))
    op.drop_constraint(op.f("ck_payment_operation_status"), TABLE, type_="check")
    for name in ("status", "effect", "requested_at", "retry_at", "completed_at", "error"):
        op.drop_column(TABLE, name)
