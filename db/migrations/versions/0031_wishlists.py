"""wishlists: a user's named lists of saved places, private or shared by a link

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wishlist",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("check_in", sa.Date(), nullable=True),
        sa.Column("check_out", sa.Date(), nullable=True),
        sa.Column("guests", sa.SmallInteger(), nullable=True),
        sa.Column("share_token_hash", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "char_length(name) BETWEEN 1 AND 100", name=op.f("ck_wishlist_name_length")
        ),
        sa.CheckConstraint(
            "(check_in IS NULL) = (check_out IS NULL)"
            " AND (check_out IS NULL OR check_out > check_in)",
            name=op.f("ck_wishlist_stay"),
        ),
        sa.CheckConstraint(
            "guests IS NULL OR guests BETWEEN 1 AND 50", name=op.f("ck_wishlist_guests")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_wishlist_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wishlist")),
    )
    op.create_index("ix_wishlist_user_newest", "wishlist", ["user_id", "created_at", "id"])
    op.create_index("uq_wishlist_share_token", "wishlist", ["share_token_hash"], unique=True)
    op.create_table(
        "wishlist_item",
        sa.Column("wishlist_id", sa.BigInteger(), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["wishlist_id"],
            ["wishlist.id"],
            name=op.f("fk_wishlist_item_wishlist_id_wishlist"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listing.id"],
            name=op.f("fk_wishlist_item_listing_id_listing"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_wishlist_item_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("wishlist_id", "listing_id", name=op.f("pk_wishlist_item")),
    )
    op.create_index(
        "ix_wishlist_item_newest", "wishlist_item", ["wishlist_id", "saved_at", "listing_id"]
    )
    op.create_index("ix_wishlist_item_user_listing", "wishlist_item", ["user_id", "listing_id"])


def downgrade() -> None:
    op.drop_table("wishlist_item")
    op.drop_table("wishlist")
