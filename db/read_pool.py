"""The connections of the hot reads (db/raw.py): opened when needed, up to a bound, kept open,
and lent one at a time.

asyncpg's own pool does this and more for every query it lends a connection to: a context
object, a task to shield the return, a reset and two timers. That costs as much CPU again as
the query (78 µs against 46 µs for a one-row query here), and a search page runs four. Here a
connection goes back onto a stack; one whose state is unknown (a query cancelled or cut off
midway, a transaction left open) is closed instead.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg


class ReadPool:
    def __init__(
        self, connect: Callable[[], Awaitable[asyncpg.Connection]], *, max_size: int
    ) -> None:
        self._connect = connect
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[asyncpg.Connection] = []
        # Connections open (lent or idle), by id, with the generation they were opened in.
        self._generations: dict[int, int] = {}
        self._generation = 0
        self._closed = False
        self.max_size = max_size

    @property
    def open(self) -> int:
        return len(self._generations)

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        # As acquire() does, without a context manager's cost on every read.
        connection = await self._lend()
        reusable = False
        try:
            rows: list[asyncpg.Record] = await connection.fetch(sql, *args)
            reusable = True
            return rows
        except asyncpg.PostgresError:  # the server's answer: the connection is as it was
            reusable = True
            raise
        finally:
            self._take_back(connection, reusable=reusable)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        connection = await self._lend()
        reusable = False
        try:
            yield connection
            reusable = True
        except asyncpg.PostgresError:  # the server's answer: the connection is as it was
            reusable = True
            raise
        finally:
            self._take_back(connection, reusable=reusable)

    def expire(self) -> None:
        """The server dropped its connections (a restart, a failover): the idle ones are
        closed now, the lent ones once they come back; new ones are opened as needed."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for connection in idle:
            self._terminate(connection)

    async def close(self) -> None:
        """Closes the idle connections; the lent ones are closed once they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._generations.pop(id(connection), None)
        await asyncio.gather(*(c.close(timeout=5) for c in idle), return_exceptions=True)

    async def _lend(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the pool of reads is closed")
        await self._slots.acquire()
        try:
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():  # the server may have closed it meanwhile
                    return connection
                self._generations.pop(id(connection), None)
            connection = await self._connect()
        except BaseException:
            self._slots.release()
            raise
        self._generations[id(connection)] = self._generation
        return connection

    def _take_back(self, connection: asyncpg.Connection, *, reusable: bool) -> None:
        if (
            reusable
            and not self._closed
            and self._generations.get(id(connection)) == self._generation
            and not connection.is_closed()
            and not connection.is_in_transaction()
        ):
            self._idle.append(connection)
        else:
            self._terminate(connection)
        self._slots.release()

    def _terminate(self, connection: asyncpg.Connection) -> None:
        self._generations.pop(id(connection), None)
        connection.terminate()
