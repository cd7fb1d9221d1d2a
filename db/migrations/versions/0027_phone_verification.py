"""phone verification: when a user's number was confirmed, and the code texted to confirm it

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "user_account", sa.Column("phone_verified_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "phone_verification",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("code_sealed", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "failed_attempts >= 0", name=op.f("ck_phone_verification_failed_attempts")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_phone_verification_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_phone_verification")),
    )


def downgrade() -> None:
    op.drop_table("phone_verification")
    op.drop_column("user_account", "phone_verified_at")
