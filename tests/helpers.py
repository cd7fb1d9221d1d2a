"""What tests share besides fixtures: settings, the app run in-process or under uvicorn, GraphQL
over HTTP, a statement counter, a clock the test sets, and free ports and embedded servers."""

import asyncio
import base64
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import uvicorn
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.types import ASGIApp

from app.processes import server_options
from app.settings import Settings
from db import raw
from db.database import Database
from schema.compiled import in_shadow_execution


def plain_url(url: str, database: str | None = None) -> str:
    """The URL in the form asyncpg itself takes."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


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
        # Every query a compiled plan answers is checked against graphql-core's answer.
        "execution_shadow": True,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[Starlette]:
    """The app with its lifespan entered, as uvicorn would run it."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """``app`` under a real uvicorn on a free loopback port; yields its base URL."""
    # The socket stays bound from here on: a port found free and then let go could be taken
    # by another test process before uvicorn binds it.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # Configured as `roost serve` configures it.
    options = server_options(MAX_BODY_BYTES)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **options)
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    async with asyncio.timeout(10):
        while not server.started:
            assert not task.done(), "uvicorn stopped before it started"
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


def http_client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@asynccontextmanager
async def committed(database: Database) -> AsyncIterator[AsyncSession]:
    """A session whose changes commit when the block ends, for a test's own setup and checks
    (the app writes through ``Database.transaction`` only)."""
    async with database.sessionmaker() as session, session.begin():
        yield session


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
        if not in_shadow_execution.get():  # the shadow mode's second execution is not counted
            self.statements.append(statement)

    def _count_raw(self, statement: str) -> None:
        if not in_shadow_execution.get():
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in " ".join(cmdline):
            found.append(process)
    return found


# Each listing whose listing_calendar row is not what booking and blocked_night say (a missing
# row too): the truth computed here on its own, not by the migration's function.
CALENDAR_DRIFT = """
SELECT l.id, c.taken_nights::text AS stored, truth.nights::text AS truth
FROM listing l
LEFT JOIN listing_calendar c ON c.listing_id = l.id
CROSS JOIN LATERAL (
    SELECT coalesce(range_agg(nights), '{}'::datemultirange) AS nights FROM (
        SELECT daterange(k.check_in, k.check_out) AS nights FROM booking k
        WHERE k.listing_id = l.id AND k.status IN ('PENDING', 'CONFIRMED')
        UNION ALL
        SELECT daterange(b.night, b.night + 1) FROM blocked_night b WHERE b.listing_id = l.id
    ) AS taken
) AS truth
WHERE c.taken_nights IS DISTINCT FROM truth.nights
ORDER BY l.id
"""


async def calendar_drift(database: Database) -> list[tuple[int, str | None, str]]:
    """The listings whose taken nights, as search reads them, are out of step (none, always)."""
    async with (await database.reads()).acquire() as connection:
        return [tuple(row) for row in await connection.fetch(CALENDAR_DRIFT)]
