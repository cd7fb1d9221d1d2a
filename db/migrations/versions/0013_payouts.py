"""payout_account and payout: hosts paid after their guests' stays

A host connects one payout account (Stripe Connect Express); each completed booking owes its
host one payout, sent by a worker once due and once the account is ready.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_STATUSES = "'ONBOARDING', 'READY', 'RESTRICTED'"
PAYOUT_STATUSES = "'PENDING', 'SENDING', 'PAID', 'FAILED', 'REVERSED'"
PROVIDERS = "'STRIPE', 'PAYPAL', 'MPESA', 'TEST'"


def upgrade() -> None:
    op.create_table(
        "payout_account",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "host_id",
            sa.BigInteger,
            sa.ForeignKey(
                "user_account.id",
                ondelete="RESTRICT",
                name="fk_payout_account_host_id_user_account",
            ),
            nullable=False,
        ),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("provider_account_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, server_default="ONBOARDING", nullable=False),
        sa.Column("details_submitted", sa.Boolean, server_default=sa.text("false"), nullable=False),
        sa.Column("payouts_enabled", sa.Boolean, server_default=sa.text("false"), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("host_id", name="uq_payout_account_host_id"),
        sa.UniqueConstraint("provider_account_id", name="uq_payout_account_provider_account_id"),
        sa.CheckConstraint(f"status IN ({ACCOUNT_STATUSES})", name="ck_payout_account_status"),
        sa.CheckConstraint(f"provider IN ({PROVIDERS})", name="ck_payout_account_provider"),
    )
    op.create_table(
        "payout",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "booking_id",
            sa.BigInteger,
            sa.ForeignKey("booking.id", name="fk_payout_booking_id_booking"),
            nullable=False,
        ),
        sa.Column(
            "host_id",
            sa.BigInteger,
            sa.ForeignKey("user_account.id", name="fk_payout_host_id_user_account"),
            nullable=False,
        ),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("host_fee_minor", sa.BigInteger, nullable=False),
        sa.Column("refunds_minor", sa.BigInteger, nullable=False),
        sa.Column("earned_on", sa.Date, nullable=False),
        sa.Column("status", sa.Text, server_default="PENDING", nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("provider_transfer_id", sa.Text, nullable=True),
        sa.Column("key_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, server_default="0", nullable=False),
        sa.Column("declines", sa.Integer, server_default="0", nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("booking_id", name="uq_payout_booking_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_payout_idempotency_key"),
        sa.CheckConstraint(f"status IN ({PAYOUT_STATUSES})", name="ck_payout_status"),
        sa.CheckConstraint(
            "amount_minor >= 0 AND host_fee_minor >= 0 AND refunds_minor >= 0",
            name="ck_payout_amounts",
        ),
    )
    op.create_index(
        "ix_payout_due",
        "payout",
        ["available_at"],
        postgresql_where=sa.text("status IN ('PENDING', 'FAILED')"),
    )
    op.create_index(
        "ix_payout_sending_lease",
        "payout",
        ["lease_until"],
        postgresql_where=sa.text("status = 'SENDING'"),
    )
    op.create_index(
        "ix_booking_completed_end",
        "booking",
        ["ends_at"],
        postgresql_where=sa.text("status = 'COMPLETED'"),
    )
    op.create_index("ix_payout_host_earned", "payout", ["host_id", "earned_on"])
    op.create_index("ix_payout_host_id", "payout", ["host_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_booking_completed_end", table_name="booking")
    op.drop_table("payout")
    op.drop_table("payout_account")
