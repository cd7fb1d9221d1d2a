"""calendar sync: each listing's secret iCalendar feed

The feed's token is a bearer secret kept beside the listing rather than on it, so rotating it
is not a change of the listing (which would move the search generation).

Revision ID: 0032
Revises: 0030 (0031, wishlists, is built on another branch; the merge re-chains this onto it)
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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


def downgrade() -> None:
    op.drop_table("calendar_feed")
