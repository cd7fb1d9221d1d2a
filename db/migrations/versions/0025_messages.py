"""messages: a thread per guest, host and listing, its messages, and each side's unread count

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_thread",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("guest_id", sa.BigInteger(), nullable=False),
        sa.Column("host_id", sa.BigInteger(), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("guest_unread", sa.Integer(), server_default="0", nullable=False),
        sa.Column("host_unread", sa.Integer(), server_default="0", nullable=False),
        sa.Column("guest_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("host_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("guest_id <> host_id", name=op.f("ck_message_thread_two_people")),
        sa.CheckConstraint(
            "guest_unread >= 0 AND host_unread >= 0", name=op.f("ck_message_thread_unread")
        ),
        sa.ForeignKeyConstraint(
            ["guest_id"], ["user_account.id"], name=op.f("fk_message_thread_guest_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["user_account.id"], name=op.f("fk_message_thread_host_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listing.id"], name=op.f("fk_message_thread_listing_id_listing")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_message_thread_booking_id_booking")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_thread")),
        sa.UniqueConstraint(
            "guest_id",
            "host_id",
            "listing_id",
            name=op.f("uq_message_thread_guest_id_host_id_listing_id"),
        ),
    )
    op.create_index(op.f("ix_message_thread_listing_id"), "message_thread", ["listing_id"])
    op.create_index(
        "ix_message_thread_guest_activity", "message_thread", ["guest_id", "last_message_at", "id"]
    )
    op.create_index(
        "ix_message_thread_host_activity", "message_thread", ["host_id", "last_message_at", "id"]
    )
    op.create_table(
        "message",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "char_length(body) BETWEEN 1 AND 5000", name=op.f("ck_message_body_length")
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["message_thread.id"], name=op.f("fk_message_thread_id_message_thread")
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["user_account.id"], name=op.f("fk_message_sender_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    op.create_index("ix_message_thread_newest", "message", ["thread_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("message")
    op.drop_table("message_thread")
