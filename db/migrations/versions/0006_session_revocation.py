"""session revocation: ended sessions are announced as they end, and found by index

A session (a refresh-token family) ends when one of its tokens is revoked. The trigger sends the
family id on the channel ``roost_session_revoked`` in the revoking transaction, so every API
process hears of it exactly when it commits, whoever revoked it (the API, or an operator's own
UPDATE during an incident). See auth/revocations.py.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only revoked tokens are indexed: "is this session revoked?" and "which sessions were
    # revoked lately?" each read a few entries, however many tokens a session has rotated.
    op.create_index(
        "ix_refresh_token_revoked_family",
        "refresh_token",
        ["family_id"],
        postgresql_where=sa.text("revoked_at IS NOT NULL"),
    )
    op.create_index(
        "ix_refresh_token_revoked_at",
        "refresh_token",
        ["revoked_at"],
        postgresql_where=sa.text("revoked_at IS NOT NULL"),
    )
    op.execute(
        """
        CREATE FUNCTION announce_session_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          -- PostgreSQL sends one notice per distinct payload and transaction.
          PERFORM pg_notify('roost_session_revoked', NEW.family_id::text);
          RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER refresh_token_revoked
        AFTER UPDATE OF revoked_at ON refresh_token
        FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
        EXECUTE FUNCTION announce_session_revoked()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER refresh_token_revoked ON refresh_token")
    op.execute("DROP FUNCTION announce_session_revoked()")
    op.drop_index("ix_refresh_token_revoked_at", table_name="refresh_token")
    op.drop_index("ix_refresh_token_revoked_family", table_name="refresh_token")
