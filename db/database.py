"""The async engine, sessions and units of work."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import QueuePool

from db.outages import DATABASE, outages
from db.read_pool import ReadPool


def async_url(url: str) -> str:
    """The SQLAlchemy asyncpg form of a PostgreSQL URL given in any of its usual spellings."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"Roost needs PostgreSQL, not {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


T = TypeVar("T")

# A deadlock or a serialization failure: the transaction can simply run again.
RETRYABLE_STATES = frozenset({"40P01", "40001"})


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, however the driver wrapped it."""
    seen: BaseException | None = error
    while seen is not None:
        code = getattr(seen, "sqlstate", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def _database_reached(*_: object) -> None:
    outages.recovered(DATABASE)


@dataclass(frozen=True)
class PoolUsage:
    """One pool's connections at a moment: lent out, open (lent out or idle), and its limit."""

    name: str
    in_use: int
    open: int
    limit: int


class Database:
    """A pool for sessions (SQLAlchemy), a pool for the hot reads (plain asyncpg, see
    db/raw.py), and short sessions drawn from the first."""

    def __init__(self, url: str, *, statement_timeout_ms: int = 5_000, pool_size: int = 10) -> None:
        self.server_settings = {
            "application_name": "roost",
            "statement_timeout": str(statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(statement_timeout_ms * 6),
            # asyncpg prepares every statement; after five runs PostgreSQL may switch to a
            # generic plan that ignores the values (5x slower for search here).
            "plan_cache_mode": "force_custom_plan",
            # Many small queries at once: parallel workers only compete for the cores.
            "max_parallel_workers_per_gather": "0",
        }
        self.engine = create_async_engine(
            async_url(url),
            # A connection broken by a database restart is noticed and replaced.
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=10,
            connect_args={"timeout": 10, "server_settings": self.server_settings},
        )
        # A new connection made is the end of any outage this process was in.
        event.listen(self.engine.sync_engine, "connect", _database_reached)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._plain_url = make_url(async_url(url)).set(drivername="postgresql")
        self._pool_size = pool_size
        self._reads: ReadPool | None = None

    async def reads(self) -> ReadPool:
        """The pool of the hot read paths, made on first use."""
        if self._reads is None:
            # No connection is opened before one is needed: none is kept waiting for a
            # database out of reach.
            self._reads = ReadPool(self._connect_for_reads, max_size=self._pool_size)
        return self._reads

    async def _connect_for_reads(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(
            self._plain_url.render_as_string(hide_password=False),
            timeout=10,
            server_settings=self.server_settings,
        )
        _database_reached()
        return connection

    def pool_usage(self) -> list[PoolUsage]:
        """Both pools as they stand (the reads pool only once made), for the metrics."""
        pool = self.engine.pool
        in_use = pool.checkedout() if isinstance(pool, QueuePool) else 0
        idle = pool.checkedin() if isinstance(pool, QueuePool) else 0
        # The sessions' pool may open as many again in overflow (see __init__).
        usage = [PoolUsage("orm", in_use, in_use + idle, self._pool_size * 2)]
        if self._reads is not None:
            reads = self._reads
            usage.append(PoolUsage("reads", reads.open - reads.idle, reads.open, reads.max_size))
        return usage

    async def transaction(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 3
    ) -> T:
        """The one way a change is written: ``work`` runs in a unit of work that commits when it
        returns and rolls back when it raises, and runs again when the database chose it as a
        deadlock victim or could not serialize it. So ``work`` must be safe to repeat, and call
        nothing outside the database.

        A refusal whose changes must stand (an ended session, say) is returned by ``work``, not
        raised, and raised by the caller once this has committed (services.errors.Refusal)."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.sessionmaker() as session, session.begin():
                    return await work(session)
            except DBAPIError as error:
                if sqlstate(error) not in RETRYABLE_STATES or attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; it never commits."""
        async with self.sessionmaker() as session:
            yield session

    async def dedicated_connection(
        self, application_name: str, server_settings: dict[str, str] | None = None
    ) -> asyncpg.Connection:
        """A connection outside both pools, for a long-lived task (a LISTEN); the caller
        closes it."""
        return await asyncpg.connect(
            self._plain_url.render_as_string(hide_password=False),
            timeout=10,
            server_settings={
                **self.server_settings,
                "application_name": application_name,
                **(server_settings or {}),
            },
        )

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._reads is not None:
            reads, self._reads = self._reads, None
            await reads.close()
        await self.engine.dispose()
