"""The hot reads' connections (db/read_pool.py): reused while sound, never past their bound."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from db.database import Database
from db.read_pool import ReadPool


@pytest.fixture
async def pool(database: Database) -> AsyncIterator[ReadPool]:
    made = ReadPool(database._connect_for_reads, max_size=2)
    yield made
    await made.close()


async def backend(pool: ReadPool) -> int:
    [row] = await pool.fetch("SELECT pg_backend_pid()")
    return int(row[0])


async def test_a_connection_is_lent_again_once_it_answered(pool: ReadPool) -> None:
    first = await backend(pool)
    assert await backend(pool) == first
    assert (pool.open, pool.idle) == (1, 1)


async def test_no_more_are_open_than_the_bound_and_the_others_wait(pool: ReadPool) -> None:
    async def slow() -> None:
        await pool.fetch("SELECT pg_sleep(0.2)")

    await asyncio.gather(*(slow() for _ in range(5)))
    assert pool.open == 2
    async with pool.acquire(), pool.acquire():
        waiting = asyncio.create_task(backend(pool))
        await asyncio.sleep(0.1)
        assert not waiting.done()
    await waiting


async def test_an_error_of_the_server_leaves_the_connection_in_use(pool: ReadPool) -> None:
    first = await backend(pool)
    with pytest.raises(asyncpg.UndefinedTableError):
        await pool.fetch("SELECT * FROM no_such_table")
    assert await backend(pool) == first


async def test_a_query_cut_off_midway_closes_its_connection(pool: ReadPool) -> None:
    first = await backend(pool)
    reading = asyncio.create_task(pool.fetch("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.1)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert (pool.open, pool.idle) == (0, 0)
    assert await backend(pool) != first


async def test_a_transaction_left_open_is_not_lent_to_the_next_reader(pool: ReadPool) -> None:
    async with pool.acquire() as connection:
        first = await connection.fetchval("SELECT pg_backend_pid()")
        await connection.execute("BEGIN")
    assert await backend(pool) != first


async def test_a_connection_the_server_ended_is_not_lent(
    pool: ReadPool, database: Database
) -> None:
    first = await backend(pool)
    async with (await database.reads()).acquire() as other:
        await other.execute("SELECT pg_terminate_backend($1)", first)
    await asyncio.sleep(0.1)  # the end of the connection reaches the client
    assert await backend(pool) != first


async def test_expired_connections_are_closed_idle_or_once_back(pool: ReadPool) -> None:
    async with pool.acquire() as lent:
        was_lent = lent.get_server_pid()
        idle = await backend(pool)
        pool.expire()
        assert pool.idle == 0
    assert lent.is_closed()
    assert await backend(pool) not in (idle, was_lent)
    assert pool.open == 1
