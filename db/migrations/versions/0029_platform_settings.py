"""platform settings admins change: fees, taxes, windows, payout delay, moderation; listings'
moderation (APPROVED, PENDING_REVIEW, FLAGGED), existing ones approved

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = (
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
)
NEW_KINDS = (*OLD_KINDS, "LISTING_APPROVED", "LISTING_FLAGGED")


def _notification_kinds(kinds: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    op.create_check_constraint(op.f("ck_notification_kind"), "notification", f"kind IN ({listed})")


def upgrade() -> None:
    op.create_table(
        "platform_settings",
        sa.Column("id", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("guest_service_fee_percent", sa.Numeric(5, 2), nullable=True),
        sa.Column("host_fee_percent", sa.Numeric(5, 2), nullable=True),
        sa.Column("occupancy_tax_percent", sa.Numeric(5, 2), nullable=True),
        sa.Column("tax_percent_by_country", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("payment_window_minutes", sa.Integer(), nullable=True),
        sa.Column("host_response_hours", sa.Integer(), nullable=True),
        sa.Column("payout_delay_hours", sa.Integer(), nullable=True),
        sa.Column("moderation_enabled", sa.Boolean(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_platform_settings_single_row")),
        sa.CheckConstraint(
            "guest_service_fee_percent BETWEEN 0 AND 100"
            " AND host_fee_percent BETWEEN 0 AND 100"
            " AND occupancy_tax_percent BETWEEN 0 AND 100",
            name=op.f("ck_platform_settings_percents"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["user_account.id"],
            name=op.f("fk_platform_settings_updated_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_settings")),
    )
    # Every listing there is was published without review: approved as it stands.
    op.add_column(
        "listing", sa.Column("moderation", sa.Text(), server_default="APPROVED", nullable=False)
    )
    op.add_column("listing", sa.Column("moderation_reason", sa.Text(), nullable=True))
    op.add_column(
        "listing",
        sa.Column(
            "moderation_since",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column("listing", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("listing", sa.Column("reviewed_by_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_listing_reviewed_by_id_user_account"),
        "listing",
        "user_account",
        ["reviewed_by_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint(
        op.f("ck_listing_moderation"),
        "listing",
        "moderation IN ('APPROVED', 'PENDING_REVIEW', 'FLAGGED')",
    )
    op.create_index(
        "ix_listing_moderation_queue",
        "listing",
        ["moderation", "moderation_since", "id"],
        postgresql_where=sa.text("moderation <> 'APPROVED' AND deleted_at IS NULL"),
    )
    _notification_kinds(NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE kind IN ('LISTING_APPROVED', 'LISTING_FLAGGED')")
    _notification_kinds(OLD_KINDS)
    op.drop_index("ix_listing_moderation_queue", table_name="listing")
    op.drop_constraint(op.f("ck_listing_moderation"), "listing", type_="check")
    op.drop_constraint(
        op.f("fk_listing_reviewed_by_id_user_account"), "listing", type_="foreignkey"
    )
    for column in (
        "reviewed_by_id",
        "reviewed_at",
        "moderation_since",
        "moderation_reason",
        "moderation",
    ):
        op.drop_column("listing", column)
    op.drop_table("platform_settings")
