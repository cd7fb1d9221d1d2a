"""The hot read paths' SQL, sent straight through asyncpg.

SQLAlchemy costs CPU for every statement it builds, keys, compiles and turns into rows; the
statements every search page runs (the page, its count, its hosts and photos) are written as
SQL with positional parameters instead, and come back as asyncpg records that also read as
attributes, like SQLAlchemy rows do. Connections still come from the engine's pool.
"""

from collections.abc import Callable
from typing import Any

import asyncpg

from db.database import Database

# Called with each statement sent, as SQLAlchemy's before_cursor_execute event is for the rest.
statement_listeners: list[Callable[[str], None]] = []


class Record(asyncpg.Record):
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Parameters:
    """Collects values for one statement: each call answers the placeholder of its value."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


async def fetch(database: Database, sql: str, *args: Any) -> list[Record]:
    for listener in statement_listeners:
        listener(sql)
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        return await raw.driver_connection.fetch(sql, *args, record_class=Record)
