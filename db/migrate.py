"""Applying and checking Alembic migrations from code."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed number: replicas that start together migrate one after the other.
_MIGRATION_LOCK_KEY = 0x526F6F7374


class SchemaBehind(Exception):
    """The database has not been migrated to what this code needs."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def _upgrade(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")


async def upgrade_to_head(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """Apply every pending migration; answers the revisions before and after."""
    before = await current_revision(engine)
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
    return before, head_revision()


async def ensure_schema_current(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaBehind(
            f"The database schema is at {current or 'nothing'} but this code needs {head}. "
            "Run `roost migrate` first."
        )
