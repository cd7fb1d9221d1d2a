"""search cache generation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_generation",
        sa.Column("id", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_search_generation_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_generation")),
    )
    op.execute("INSERT INTO search_generation (id, value) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("search_generation")
