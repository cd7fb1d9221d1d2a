"""accounts: credentials, sessions, one-time tokens, oauth identities, uploads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_identity",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_oauth_identity_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_identity")),
        sa.UniqueConstraint("provider", "subject", name=op.f("uq_oauth_identity_provider_subject")),
    )
    op.create_index(op.f("ix_oauth_identity_user_id"), "oauth_identity", ["user_id"], unique=False)
    op.create_table(
        "one_time_token",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "purpose IN ('password_reset', 'email_verification')",
            name=op.f("ck_one_time_token_purpose"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_one_time_token_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_one_time_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_one_time_token_token_hash")),
    )
    op.create_index(op.f("ix_one_time_token_user_id"), "one_time_token", ["user_id"], unique=False)
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("ip_address", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_refresh_token_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    op.create_index(
        op.f("ix_refresh_token_family_id"), "refresh_token", ["family_id"], unique=False
    )
    op.create_index(op.f("ix_refresh_token_user_id"), "refresh_token", ["user_id"], unique=False)
    op.create_table(
        "upload",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("thumbnail_key", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_upload_owner_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload")),
    )
    op.create_index(op.f("ix_upload_owner_id"), "upload", ["owner_id"], unique=False)
    op.add_column("user_account", sa.Column("avatar_upload_id", sa.BigInteger(), nullable=True))
    op.add_column("user_account", sa.Column("password_hash", sa.Text(), nullable=True))
    op.add_column("user_account", sa.Column("phone_encrypted", sa.Text(), nullable=True))
    op.add_column(
        "user_account", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "user_account", sa.Column("currency", sa.Text(), server_default="USD", nullable=False)
    )
    op.add_column(
        "user_account", sa.Column("language", sa.Text(), server_default="en", nullable=False)
    )
    op.add_column(
        "user_account", sa.Column("time_zone", sa.Text(), server_default="UTC", nullable=False)
    )
    op.add_column(
        "user_account",
        sa.Column(
            "notification_channels",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("ARRAY['EMAIL', 'IN_APP']"),
            nullable=False,
        ),
    )
    op.create_foreign_key(
        op.f("fk_user_account_avatar_upload_id_upload"),
        "user_account",
        "upload",
        ["avatar_upload_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.drop_column("user_account", "avatar_url")


def downgrade() -> None:
    op.add_column(
        "user_account", sa.Column("avatar_url", sa.TEXT(), autoincrement=False, nullable=True)
    )
    op.drop_constraint(
        op.f("fk_user_account_avatar_upload_id_upload"), "user_account", type_="foreignkey"
    )
    op.drop_column("user_account", "notification_channels")
    op.drop_column("user_account", "time_zone")
    op.drop_column("user_account", "language")
    op.drop_column("user_account", "currency")
    op.drop_column("user_account", "email_verified_at")
    op.drop_column("user_account", "phone_encrypted")
    op.drop_column("user_account", "password_hash")
    op.drop_column("user_account", "avatar_upload_id")
    op.drop_index(op.f("ix_upload_owner_id"), table_name="upload")
    op.drop_table("upload")
    op.drop_index(op.f("ix_refresh_token_user_id"), table_name="refresh_token")
    op.drop_index(op.f("ix_refresh_token_family_id"), table_name="refresh_token")
    op.drop_table("refresh_token")
    op.drop_index(op.f("ix_one_time_token_user_id"), table_name="one_time_token")
    op.drop_table("one_time_token")
    op.drop_index(op.f("ix_oauth_identity_user_id"), table_name="oauth_identity")
    op.drop_table("oauth_identity")
