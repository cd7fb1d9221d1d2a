"""outbox bell: a committed outbox event notifies ``roost_outbox``, so workers wake at once

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Once per statement, and PostgreSQL folds a transaction's equal notices into one.
    op.execute(
        """
        CREATE FUNCTION roost_outbox_bell() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('roost_outbox', '');
          RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_event_bell AFTER INSERT ON outbox_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION roost_outbox_bell()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_event_bell ON outbox_event")
    op.execute("DROP FUNCTION roost_outbox_bell()")
