"""platform settings admins change: fees, taxes, windows, payout delay, moderation

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


def downgrade() -> None:
    op.drop_table("platform_settings")
