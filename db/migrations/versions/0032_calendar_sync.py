"""calendar sync: each listing's secret iCalendar feed, and other sites' feeds it imports

The feed's token is a bearer secret kept beside the listing rather than on it, so rotating it
is not a change of the listing (which would move the search generation). A closed night names
the import that closed it (null: its host did), so a later fetch of that feed can open the
nights it no longer shows and leave the host's alone.

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0032"
down_revision: str | None = "0031"
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
    "DISPUTE_OPENED",
    "DISPUTE_RESOLVED",
)
NEW_KINDS = ("CALENDAR_CONFLICT",)


def _kinds(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade() -> None:
    op.create_table(
        "calendar_feed",
        sa.Column(
            "listing_id",
            sa.BigInteger(),
            sa.ForeignKey("listing.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("char_length(token) BETWEEN 32 AND 100", name="token_length"),
        sa.UniqueConstraint("token"),
    )
    op.create_table(
        "calendar_import",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column(
            "listing_id",
            sa.BigInteger(),
            sa.ForeignKey("listing.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("wanted", postgresql.ARRAY(sa.Date()), nullable=False, server_default="{}"),
        sa.Column("conflicts", postgresql.ARRAY(sa.Date()), nullable=False, server_default="{}"),
        sa.Column("feed_etag", sa.Text(), nullable=True),
        sa.Column("feed_last_modified", sa.Text(), nullable=True),
        sa.Column("next_fetch_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("char_length(url) BETWEEN 1 AND 2000", name="url_length"),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 100", name="name_length"),
    )
    op.create_index("ix_calendar_import_listing_id", "calendar_import", ["listing_id"])
    op.create_index("ix_calendar_import_due", "calendar_import", ["next_fetch_at"])
    op.add_column(
        "blocked_night",
        sa.Column(
            "import_id",
            sa.BigInteger(),
            sa.ForeignKey("calendar_import.id", ondelete="CASCADE"),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_blocked_night_import_id",
        "blocked_night",
        ["import_id"],
        postgresql_where=sa.text("import_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    op.create_check_constraint(
        op.f("ck_notification_kind"), "notification", _kinds((*KINDS, *NEW_KINDS))
    )


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE kind = 'CALENDAR_CONFLICT'")
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    op.create_check_constraint(op.f("ck_notification_kind"), "notification", _kinds(KINDS))
    # Nights only another site's calendar closed were never the host's: they open.
    op.execute("DELETE FROM blocked_night WHERE import_id IS NOT NULL")
    op.drop_index("ix_blocked_night_import_id", table_name="blocked_night")
    op.drop_column("blocked_night", "import_id")
    op.drop_table("calendar_import")
    op.drop_table("calendar_feed")
