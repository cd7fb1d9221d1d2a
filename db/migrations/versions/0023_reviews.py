"""reviews: double-blind reviews of stays and guests, and the sums behind a listing's rating

``listing.rating_avg`` loses its two decimals: it holds the exact mean of ``listing_rating``'s
sums, so search orders listings exactly as their means do.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = ("cleanliness", "accuracy", "communication", "location", "check_in", "value")


def upgrade() -> None:
    op.alter_column(
        "listing",
        "rating_avg",
        type_=sa.Numeric(),
        existing_type=sa.Numeric(precision=3, scale=2),
        existing_nullable=True,
    )
    category_checks = " AND ".join(
        f"({name} IS NULL OR {name} BETWEEN 1 AND 5)" for name in CATEGORIES
    )
    op.create_table(
        "review",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        *(sa.Column(name, sa.SmallInteger(), nullable=True) for name in CATEGORIES),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("host_response", sa.Text(), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hidden_reason", sa.Text(), nullable=True),
        sa.Column("hidden_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('GUEST_REVIEW', 'HOST_REVIEW')", name=op.f("ck_review_kind")),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_review_rating")),
        sa.CheckConstraint(category_checks, name=op.f("ck_review_category_ratings")),
        sa.CheckConstraint(
            "kind = 'GUEST_REVIEW' OR num_nonnulls("
            "cleanliness, accuracy, communication, location, check_in, value, host_response) = 0",
            name=op.f("ck_review_guest_review_fields"),
        ),
        sa.CheckConstraint(
            "char_length(comment) BETWEEN 1 AND 2000", name=op.f("ck_review_comment_length")
        ),
        sa.CheckConstraint(
            "host_response IS NULL OR char_length(host_response) BETWEEN 1 AND 2000",
            name=op.f("ck_review_response_length"),
        ),
        sa.CheckConstraint(
            "(host_response IS NULL) = (responded_at IS NULL)", name=op.f("ck_review_responded")
        ),
        sa.CheckConstraint(
            "num_nonnulls(hidden_at, hidden_reason, hidden_by) IN (0, 3)",
            name=op.f("ck_review_hidden"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_review_booking_id_booking")
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listing.id"], name=op.f("fk_review_listing_id_listing")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user_account.id"], name=op.f("fk_review_author_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["user_account.id"], name=op.f("fk_review_subject_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["hidden_by"], ["user_account.id"], name=op.f("fk_review_hidden_by_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review")),
        sa.UniqueConstraint("booking_id", "kind", name=op.f("uq_review_booking_id_kind")),
    )
    op.create_index(op.f("ix_review_author_id"), "review", ["author_id"])
    op.create_index("ix_review_listing_newest", "review", ["listing_id", "created_at", "id"])
    op.create_index("ix_review_subject_newest", "review", ["subject_id", "created_at", "id"])
    op.create_index(
        "ix_review_unpublished_window",
        "review",
        ["window_closes_at"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "listing_rating",
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("rating_sum", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rating_count", sa.Integer(), server_default="0", nullable=False),
        *(
            column
            for name in CATEGORIES
            for column in (
                sa.Column(f"{name}_sum", sa.BigInteger(), server_default="0", nullable=False),
                sa.Column(f"{name}_count", sa.Integer(), server_default="0", nullable=False),
            )
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listing.id"],
            name=op.f("fk_listing_rating_listing_id_listing"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("listing_id", name=op.f("pk_listing_rating")),
    )


def downgrade() -> None:
    op.drop_table("listing_rating")
    op.drop_table("review")
    op.alter_column(
        "listing",
        "rating_avg",
        type_=sa.Numeric(precision=3, scale=2),
        existing_type=sa.Numeric(),
        existing_nullable=True,
    )
