"""Alembic environment.

`roost migrate` (and `roost serve` in development) hands a connection in through
``config.attributes``; the plain ``alembic`` command reads ``DATABASE_URL``.
"""

import asyncio
import os

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from db.database import async_url
from db.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, compare_server_default=True
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_async_engine(async_url(url))
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Roost's migrations run against a database; offline mode is not supported.")
elif (connection := context.config.attributes.get("connection")) is not None:
    _run(connection)
elif url := os.environ.get("DATABASE_URL"):
    asyncio.run(_run_with_own_engine(url))
else:
    raise SystemExit("Set DATABASE_URL, or use `uv run roost migrate` (embedded database).")
