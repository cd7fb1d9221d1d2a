"""Fixtures: a real PostgreSQL (DATABASE_URL when set, else embedded), a fresh database per run,
clean tables per test, and the app driven over HTTP through httpx."""

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from app.http import create_app
from app.settings import Settings
from db.database import Database
from db.embedded import EmbeddedPostgres
from db.migrate import upgrade_to_head
from db.models import Base
from gateways.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from schema.compiled import shadow_mismatches
from tests.helpers import (
    START,
    FakeClock,
    calendar_drift,
    http_client,
    make_settings,
    plain_url,
    postgres_processes,
    running,
)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="roost-test-") as data_dir:
        with EmbeddedPostgres(Path(data_dir) / "pg") as url:
            yield url


@pytest.fixture(scope="session")
def initialised_pgdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded PostgreSQL's data, initialised and stopped: initdb takes seconds, once."""
    pgdata = tmp_path_factory.mktemp("initialised") / "pg"
    with EmbeddedPostgres(pgdata):
        pass
    return pgdata


@pytest.fixture
def data_dir(tmp_path: Path, initialised_pgdata: Path) -> Iterator[Path]:
    """A ROOST_DATA_DIR whose embedded PostgreSQL is initialised but empty and not running."""
    data_dir = tmp_path / "roost-data"
    shutil.copytree(initialised_pgdata, data_dir / "pg", symlinks=True)
    if os.geteuid() == 0:  # pgserver then runs PostgreSQL as a user of its own: keep its files
        for source in [initialised_pgdata, *initialised_pgdata.rglob("*")]:
            owner = source.lstat()
            copy = data_dir / "pg" / source.relative_to(initialised_pgdata)
            os.lchown(copy, owner.st_uid, owner.st_gid)
    yield data_dir
    for leftover in postgres_processes(tmp_path):
        leftover.kill()


@pytest.fixture(scope="session")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A database of its own for this test run, migrated to head, dropped at the end."""
    name = f"roost_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(plain_url(postgres_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = plain_url(postgres_server_url, name)
        database = Database(url)
        await upgrade_to_head(database.engine)
        await database.dispose()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    async with running(create_app(settings)) as started:
        yield started


# Filled by migrations, not by tests: kept between tests.
REFERENCE_TABLES = frozenset({"amenity", "exchange_rate", "search_generation"})


def fresh_limiter(app: Starlette) -> RateLimiter:
    """Counters nobody has touched: in Redis under a new prefix, or a new in-process set."""
    if app.state.redis is not None:
        return RedisRateLimiter(app.state.redis, prefix=f"roost-test:{uuid.uuid4().hex}:")
    return MemoryRateLimiter()


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    """A fresh rate limiter of each kind (the Redis one only when REDIS_URL is set)."""
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set")
    redis = Redis.from_url(url)
    yield RedisRateLimiter(redis, prefix=f"roost-test:{uuid.uuid4().hex}:")
    await redis.aclose()


@pytest.fixture(scope="session")
async def emptying(app: Starlette) -> str:
    """The script that empties the database between tests, as one round trip.

    DELETE, not TRUNCATE: a TRUNCATE of every table costs ~115 ms here (new files for each),
    half the suite's time, where deleting a test's few rows costs ~15 ms. Foreign keys and
    triggers are off while it runs (session_replication_role; the tests' role is a superuser),
    so the order of the tables does not matter, and every row of them goes anyway."""
    pool = await app.state.database.reads()
    sequences = await pool.fetch(
        "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'"
    )
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in REFERENCE_TABLES]
    return "".join(
        [
            "BEGIN; SET LOCAL session_replication_role = replica;",
            *(f'DELETE FROM "{table}";' for table in tables),  # noqa: S608 (our own names)
            *(f"ALTER SEQUENCE {name} RESTART;" for (name,) in sequences),
            # Searches cached by an earlier test must not answer for this one's data.
            "UPDATE search_generation SET value = value + 1; COMMIT;",
        ]
    )


@pytest.fixture
async def database(app: Starlette, emptying: str) -> AsyncIterator[Database]:
    """The app's database emptied, and its rate limits forgotten, before the test."""
    database: Database = app.state.database
    async with (await database.reads()).acquire() as connection:
        await connection.execute(emptying)
    services = app.state.services
    app.state.services = replace(
        services, attempt_limits=replace(services.attempt_limits, limiter=fresh_limiter(app))
    )
    # An earlier test's platform settings are gone with its rows: read the empty table now, so
    # no test finds a stale copy, nor counts the read among its own statements.
    services.platform_settings.forget()
    await services.platform_settings.stored()
    yield database
    # Whatever the test wrote through whichever path, search's copy of the calendar followed.
    assert await calendar_drift(database) == [], "listing_calendar is out of step"


@pytest.fixture
async def client(app: Starlette, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as client:
        yield client


@pytest.fixture
def clock(app: Starlette) -> Iterator[FakeClock]:
    clock = FakeClock(START)
    services = app.state.services
    app.state.services = replace(services, clock=clock)
    yield clock
    app.state.services = replace(app.state.services, clock=services.clock)


@pytest.fixture(autouse=True)
def compiled_plans_agree_with_graphql_core() -> Iterator[None]:
    """Every test runs its queries in shadow mode (tests/helpers.py make_settings): a compiled
    plan whose answer differs from graphql-core's fails the test that sent the query, even
    where the failed request's own answer went unchecked."""
    before = len(shadow_mismatches)
    yield
    assert shadow_mismatches[before:] == [], "a compiled plan answered differently (see the log)"
