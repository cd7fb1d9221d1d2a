"""Fixtures: a real PostgreSQL (DATABASE_URL when set, else embedded), a fresh database per run,
clean tables per test, and the app driven over HTTP through httpx."""

import asyncio
import base64
import os
import secrets
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.types import ASGIApp

from app.http import create_app
from app.processes import server_options
from app.settings import Settings
from db import raw
from db.database import Database
from db.embedded import EmbeddedPostgres
from db.migrate import upgrade_to_head
from db.models import Base
from gateways.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter


def plain_url(url: str, database: str | None = None) -> str:
    """The URL in the form asyncpg itself takes."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="roost-test-") as data_dir:
        with EmbeddedPostgres(Path(data_dir) / "pg") as url:
            yield url


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


MAX_BODY_BYTES = Settings.model_fields["max_body_bytes"].default


def make_settings(database_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "jwt_secret": SecretStr("test-secret-" + "x" * 40),
        "field_encryption_key": SecretStr(base64.urlsafe_b64encode(b"k" * 32).decode()),
        "redis_url": os.environ.get("REDIS_URL"),
        "redis_prefix": f"roost-test:{uuid.uuid4().hex}:",
        # Cheap hashes keep the suite fast; a test checks that real parameters are rehashed to.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8_192,
        "data_dir": Path(tempfile.mkdtemp(prefix="roost-test-data-")),
        "email_backend": "file",
        "log_level": "INFO",
        # Tests run the worker themselves, with the clock where they want it.
        "run_worker_in_process": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[Starlette]:
    """The app with its lifespan entered, as uvicorn would run it."""
    async with app.router.lifespan_context(app):
        yield app


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


@asynccontextmanager
async def committed(database: Database) -> AsyncIterator[AsyncSession]:
    """A session whose changes commit when the block ends, for a test's own setup and checks
    (the app writes through ``Database.transaction`` only)."""
    async with database.sessionmaker() as session, session.begin():
        yield session


@pytest.fixture
async def database(app: Starlette) -> AsyncIterator[Database]:
    """The app's database emptied, and its rate limits forgotten, before the test."""
    database: Database = app.state.database
    tables = ", ".join(
        f'"{table.name}"'
        for table in Base.metadata.sorted_tables
        if table.name not in REFERENCE_TABLES
    )
    async with committed(database) as session:
        await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # Searches cached by an earlier test must not answer for this one's data.
        await session.execute(text("UPDATE search_generation SET value = value + 1"))
    services = app.state.services
    app.state.services = replace(
        services, attempt_limits=replace(services.attempt_limits, limiter=fresh_limiter(app))
    )
    yield database


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """``app`` under a real uvicorn on a free loopback port; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Configured as `roost serve` configures it.
    options = server_options(MAX_BODY_BYTES)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **options)
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            assert not task.done(), "uvicorn stopped before it started"
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def http_client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(app: Starlette, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as client:
        yield client


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, object] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> dict:
    """Posts one GraphQL operation and answers the decoded response body."""
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


class StatementCounter:
    """Counts the SQL statements an engine sends while it is active."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine.sync_engine
        self.statements: list[str] = []

    def _count(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    def _count_raw(self, statement: str) -> None:
        self.statements.append(statement)

    def __enter__(self) -> "StatementCounter":
        event.listen(self.engine, "before_cursor_execute", self._count)
        raw.statement_listeners.append(self._count_raw)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)
        raw.statement_listeners.remove(self._count_raw)

    @property
    def count(self) -> int:
        return len(self.statements)


# Noon in Lisbon on a Monday in winter (UTC+0): stays are counted from this "today".
START = datetime(2027, 1, 11, 12, 0, tzinfo=UTC)


class FakeClock:
    """Now, as the test says it is."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(app: Starlette) -> Iterator[FakeClock]:
    clock = FakeClock(START)
    services = app.state.services
    app.state.services = replace(services, clock=clock)
    yield clock
    app.state.services = replace(app.state.services, clock=services.clock)
