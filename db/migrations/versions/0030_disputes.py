"""disputes: a booking's guest or host asks admins to step in; admins' notes on them; what
came of each provider event

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The notification kinds as of this revision (constraints in migrations are frozen).
KINDS = (
    "BOOKING_REQUESTED",
    "BOOKING_CONFIRMED",
    "BOOKING_CANCELED",
    "BOOKING_COMPLETED",
    "PAYMENT_SUCCEEDED",
    "PAYMENT_FAILED",
    "PAYMENT_REFUNDED",
    "PAYOUT_SENT",
    "REVIEW_RECEIVED",
    "MESSAGE_RECEIVED",
    "LISTING_APPROVED",
    "LISTING_FLAGGED",
)
NEW_KINDS = ("DISPUTE_OPENED", "DISPUTE_RESOLVED")


def _kinds(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade() -> None:
    op.create_table(
        "dispute",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("opened_by", sa.BigInteger(), nullable=False),
        sa.Column("opened_as", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="OPEN", nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.BigInteger(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('OPEN', 'RESOLVED')", name=op.f("ck_dispute_status")),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN ('REFUND', 'PAYOUT_ADJUSTMENT', 'NO_ACTION')",
            name=op.f("ck_dispute_resolution"),
        ),
        sa.CheckConstraint("opened_as IN ('GUEST', 'HOST')", name=op.f("ck_dispute_opened_as")),
        sa.CheckConstraint(
            "char_length(message) BETWEEN 1 AND 2000", name=op.f("ck_dispute_message_length")
        ),
        sa.CheckConstraint(
            "amount_minor IS NULL OR amount_minor > 0", name=op.f("ck_dispute_amount")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_dispute_booking_id_booking")
        ),
        sa.ForeignKeyConstraint(
            ["opened_by"], ["user_account.id"], name=op.f("fk_dispute_opened_by_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["user_account.id"], name=op.f("fk_dispute_resolved_by_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute")),
    )
    # One open dispute per booking, whatever races: the second is refused here.
    op.create_index(
        "uq_dispute_open_booking",
        "dispute",
        ["booking_id"],
        unique=True,
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    op.create_index("ix_dispute_queue", "dispute", ["status", "id"])
    op.create_index("ix_dispute_booking", "dispute", ["booking_id", "id"])
    op.create_table(
        "dispute_note",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "char_length(body) BETWEEN 1 AND 2000", name=op.f("ck_dispute_note_body_length")
        ),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["dispute.id"], name=op.f("fk_dispute_note_dispute_id_dispute")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user_account.id"], name=op.f("fk_dispute_note_author_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_note")),
    )
    op.create_index("ix_dispute_note_dispute", "dispute_note", ["dispute_id", "id"])
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    op.create_check_constraint(
        op.f("ck_notification_kind"), "notification", _kinds((*KINDS, *NEW_KINDS))
    )
    op.add_column("provider_event", sa.Column("outcome", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("provider_event", "outcome")
    op.execute("DELETE FROM notification WHERE kind IN ('DISPUTE_OPENED', 'DISPUTE_RESOLVED')")
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    op.create_check_constraint(op.f("ck_notification_kind"), "notification", _kinds(KINDS))
    op.drop_table("dispute_note")
    op.drop_table("dispute")
