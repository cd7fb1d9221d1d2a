"""bookings: prices and policies kept, payments, the ledger and the outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_PAYMENT = "status IN ('PENDING', 'AUTHORIZED', 'SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')"


def _timestamp(name: str, **kwargs: Any) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)


def _created_at() -> sa.Column[Any]:
    return _timestamp("created_at", server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    added: list[sa.Column[Any]] = [
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("night_prices_minor", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("cleaning_fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("service_fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("taxes_minor", sa.BigInteger(), nullable=True),
        sa.Column("total_minor", sa.BigInteger(), nullable=True),
        sa.Column("cancellation_policy", sa.Text(), nullable=True),
        sa.Column("instant_book", sa.Boolean(), nullable=True),
        _timestamp("starts_at", nullable=True),
        _timestamp("ends_at", nullable=True),
        _timestamp("expires_at", nullable=True),
        _timestamp("canceled_at", nullable=True),
        sa.Column("canceled_by", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("refund_minor", sa.BigInteger(), nullable=True),
    ]
    for column in added:
        op.add_column("booking", column)
    # Bookings made before prices were kept: priced at their listing's nightly price and fee.
    op.execute(
        """
        UPDATE booking b SET
          currency = l.currency,
          night_prices_minor = array_fill(l.nightly_price_minor, ARRAY[b.check_out - b.check_in]),
          cleaning_fee_minor = coalesce(l.cleaning_fee_minor, 0),
          service_fee_minor = 0,
          taxes_minor = 0,
          total_minor = l.nightly_price_minor * (b.check_out - b.check_in)
            + coalesce(l.cleaning_fee_minor, 0),
          cancellation_policy = l.cancellation_policy,
          instant_book = l.instant_book,
          starts_at = (b.check_in + l.check_in_time) AT TIME ZONE l.time_zone,
          ends_at = (b.check_out + l.check_out_time) AT TIME ZONE l.time_zone,
          expires_at = CASE WHEN b.status = 'PENDING' THEN b.created_at + interval '15 minutes' END
        FROM listing l WHERE l.id = b.listing_id
        """
    )
    for name in (
        "currency", "night_prices_minor", "cleaning_fee_minor", "service_fee_minor",
        "taxes_minor", "total_minor", "cancellation_policy", "instant_book", "starts_at",
        "ends_at",
    ):  # fmt: skip
        op.alter_column("booking", name, nullable=False)
    op.create_check_constraint(
        op.f("ck_booking_a_price_a_night"),
        "booking",
        "cardinality(night_prices_minor) = check_out - check_in",
    )
    op.create_check_constraint(
        op.f("ck_booking_cancellation_policy"),
        "booking",
        "cancellation_policy IN ('FLEXIBLE', 'MODERATE', 'FIRM', 'STRICT')",
    )
    op.create_check_constraint(
        op.f("ck_booking_canceled_by"),
        "booking",
        "canceled_by IN ('GUEST', 'HOST', 'ADMIN', 'SYSTEM')",
    )
    op.create_index(
        "ix_booking_pending_expiry",
        "booking",
        ["expires_at"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        "ix_booking_confirmed_end",
        "booking",
        ["ends_at"],
        postgresql_where=sa.text("status = 'CONFIRMED'"),
    )

    op.create_table(
        "payment",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="PENDING", nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("provider_reference", sa.Text(), nullable=True),
        _created_at(),
        _timestamp("updated_at", server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'AUTHORIZED', 'SUCCEEDED', 'FAILED', 'REFUNDED',"
            " 'PARTIALLY_REFUNDED', 'CANCELED')",
            name=op.f("ck_payment_status"),
        ),
        sa.CheckConstraint(
            "provider IN ('STRIPE', 'PAYPAL', 'MPESA', 'TEST')", name=op.f("ck_payment_provider")
        ),
        sa.CheckConstraint(
            "amount_minor > 0 AND refunded_minor BETWEEN 0 AND amount_minor",
            name=op.f("ck_payment_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_payment_booking_id_booking")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment")),
    )
    op.create_index(op.f("ix_payment_booking_id"), "payment", ["booking_id"])
    op.create_index(
        "uq_payment_live_per_booking",
        "payment",
        ["booking_id"],
        unique=True,
        postgresql_where=sa.text(LIVE_PAYMENT),
    )
    op.create_table(
        "payment_operation",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("provider_reference", sa.Text(), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "kind IN ('AUTHORIZE', 'CAPTURE', 'CHARGE', 'RELEASE', 'REFUND')",
            name=op.f("ck_payment_operation_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payment.id"], name=op.f("fk_payment_operation_payment_id_payment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_operation")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payment_operation_idempotency_key")),
    )
    op.create_index(op.f("ix_payment_operation_payment_id"), "payment_operation", ["payment_id"])
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        _timestamp("available_at", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _timestamp("locked_until", nullable=True),
        _timestamp("processed_at", nullable=True),
        _timestamp("parked_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
    )
    op.create_index(
        "ix_outbox_event_due",
        "outbox_event",
        ["available_at"],
        postgresql_where=sa.text("processed_at IS NULL AND parked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("outbox_event")
    op.drop_table("payment_operation")
    op.drop_table("payment")
    op.drop_index("ix_booking_confirmed_end", table_name="booking")
    op.drop_index("ix_booking_pending_expiry", table_name="booking")
    for name in ("canceled_by", "cancellation_policy", "a_price_a_night"):
        op.drop_constraint(op.f(f"ck_booking_{name}"), "booking", type_="check")
    for name in (
        "refund_minor", "cancel_reason", "canceled_by", "canceled_at", "expires_at", "ends_at",
        "starts_at", "instant_book", "cancellation_policy", "total_minor", "taxes_minor",
        "service_fee_minor", "cleaning_fee_minor", "night_prices_minor", "currency", "message",
    ):  # fmt: skip
        op.drop_column("booking", name)
