"""The hot read paths' SQL, sent straight through asyncpg.

SQLAlchemy costs CPU for every statement it builds, keys, compiles and turns into rows; the
statements every search page runs (the page, its count, its hosts and photos) are written as
SQL with positional parameters instead, and come back as asyncpg records, which db/ turns into
the rows of db/rows.py. They run on connections of their own (db/read_pool.py): checking a
connection out of SQLAlchemy's pool (and pinging it) cost as much CPU as the query itself.
"""

from collections.abc import Callable
from typing import Any

import asyncpg

from db.database import Database

# What ``fetch`` answers: read by index or by column name.
Record = asyncpg.Record

# Called with each statement sent, as SQLAlchemy's before_cursor_execute event is for the rest.
statement_listeners: list[Callable[[str], None]] = []


class Parameters:
    """Collects values for one statement: each call answers the placeholder of its value."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


# What a connection the server dropped (a restart, a failover) raises on its next use. When the
# server's notice that it ends the connection arrives just as a query starts, asyncpg reports
# its protocol state instead (InternalClientError): the connection is as gone.
_DROPPED = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    ConnectionError,
)


async def fetch(database: Database, sql: str, *args: Any) -> list[Record]:
    for listener in statement_listeners:
        listener(sql)
    pool = await database.reads()
    try:
        return await pool.fetch(sql, *args)
    except _DROPPED:
        # Every idle connection is likely gone too: replace them all, and read once more.
        pool.expire()
        return await pool.fetch(sql, *args)
