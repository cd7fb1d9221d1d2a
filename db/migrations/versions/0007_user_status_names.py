"""user status names: ACTIVE and SUSPENDED, spelled like every other state

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _respell(old: tuple[str, str], new: tuple[str, str]) -> None:
    op.drop_constraint(op.f("ck_user_account_status"), "user_account", type_="check")
    op.execute(
        sa.text(
            "UPDATE user_account SET status = CASE status WHEN :old THEN :new ELSE :other END"
        ).bindparams(old=old[0], new=new[0], other=new[1])
    )
    op.alter_column("user_account", "status", server_default=new[0])
    op.create_check_constraint(
        op.f("ck_user_account_status"), "user_account", f"status IN ('{new[0]}', '{new[1]}')"
    )


def upgrade() -> None:
    _respell(("active", "suspended"), ("ACTIVE", "SUSPENDED"))


def downgrade() -> None:
    _respell(("ACTIVE", "SUSPENDED"), ("active", "suspended"))
