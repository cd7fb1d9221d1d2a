"""`roost backup` and `roost restore`: a dump of a database with bookings and payments, restored
into a fresh database on the same server, holds the same rows; a database in use is refused."""

import asyncio
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from starlette.applications import Starlette

from app.cli import main as roost
from db import backups
from db.backups import BackupError, Tool
from db.database import Database
from db.migrate import alembic_config
from db.models import Base
from tests.booking_helpers import a_place, booked, pay
from tests.helpers import plain_url

ROOT = Path(__file__).resolve().parent.parent
# The tables whose every row is compared; every other table's rows are counted.
CHECKED_TABLES = (
    "user_account",
    "listing",
    "booking",
    "payment",
    "payment_operation",
    "outbox_event",
)


@pytest.fixture(scope="session")
def server_tools(postgres_server_url: str) -> None:
    """Skips where this machine has no pg_dump and pg_restore new enough for the server."""
    major = backups.server_major(postgres_server_url)
    for program in ("pg_dump", "pg_restore"):
        try:
            backups.choose(program, backups.available(program), major)
        except BackupError as error:
            pytest.skip(f"no usable {program} here: {error}")


@pytest.fixture
async def empty_database(postgres_server_url: str) -> AsyncIterator[str]:
    """A new database on the tests' server with nothing in it, dropped afterwards."""
    name = f"roost_restore_{os.getpid()}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(plain_url(postgres_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield plain_url(postgres_server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def contents(url: str) -> dict[str, object]:
    """Each table's row count, a digest of every row of the checked tables, and where each
    sequence stands (so rows added after a restore do not collide with restored ones)."""
    connection = await asyncpg.connect(url)
    try:
        found: dict[str, object] = {}
        for table in Base.metadata.sorted_tables:
            found[table.name] = await connection.fetchval(
                f'SELECT count(*) FROM "{table.name}"'  # noqa: S608 (our own table names)
            )
        for table_name in CHECKED_TABLES:
            found[f"{table_name} digest"] = await connection.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"  # noqa: S608
                f' FROM "{table_name}" t'
            )
        found["sequences"] = await connection.fetch(
            "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"
        )
        return found
    finally:
        await connection.close()


async def a_few_paid_bookings(client: httpx.AsyncClient) -> None:
    for offset in (10, 20):
        place = await a_place(client)
        booking = await booked(client, place, offset, offset + 2)
        await pay(client, place, booking["id"])
    await booked(client, place, 40, 43)  # and one not paid yet


@pytest.mark.usefixtures("server_tools")
async def test_a_backup_restored_into_a_fresh_database_has_the_same_rows(
    client: httpx.AsyncClient,
    database: Database,
    app: Starlette,
    empty_database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    await a_few_paid_bookings(client)
    source = app.state.settings.database_url
    before = await contents(source)
    assert before["booking"] == 3
    assert before["payment"] == 2

    dump = tmp_path / "roost.dump"
    monkeypatch.setenv("DATABASE_URL", source)
    # The commands run their own event loops, as they do from a shell.
    assert await asyncio.to_thread(roost, ["backup", str(dump)]) == 0
    assert dump.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600  # password hashes, people's details
    assert os.listdir(tmp_path) == ["roost.dump"]  # no partial dump left beside it

    monkeypatch.setenv("DATABASE_URL", empty_database)
    assert await asyncio.to_thread(roost, ["restore", str(dump)]) == 0
    assert await contents(empty_database) == before


@pytest.mark.usefixtures("server_tools")
async def test_restore_refuses_a_database_that_is_not_empty(
    client: httpx.AsyncClient,
    database: Database,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    await a_few_paid_bookings(client)
    source = app.state.settings.database_url
    dump = tmp_path / "roost.dump"
    monkeypatch.setenv("DATABASE_URL", source)
    assert await asyncio.to_thread(roost, ["backup", str(dump)]) == 0
    before = await contents(source)

    assert await asyncio.to_thread(roost, ["restore", str(dump)]) == 2
    error = capsys.readouterr().err
    assert "is not empty" in error
    assert "public.alembic_version" in error
    assert await contents(source) == before

    assert await asyncio.to_thread(roost, ["restore", str(tmp_path / "missing.dump")]) == 2
    assert "is not a file" in capsys.readouterr().err
    not_a_dump = tmp_path / "notes.txt"
    not_a_dump.write_text("CREATE TABLE x ();\n")
    assert await asyncio.to_thread(roost, ["restore", str(not_a_dump)]) == 2
    assert "is not a dump in pg_dump's custom format" in capsys.readouterr().err


@pytest.mark.usefixtures("server_tools")
async def test_a_dump_by_a_newer_pg_dump_is_restored_by_a_pg_restore_that_reads_it(
    client: httpx.AsyncClient,
    database: Database,
    app: Starlette,
    empty_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """As when the embedded server's pg_dump 16 backs up PostgreSQL 15: pg_restore 15, the
    server's own version, cannot read the archive; a pg_restore as new as the dump's can."""
    source = app.state.settings.database_url
    server = await asyncio.to_thread(backups.server_major, source)
    dumps = await asyncio.to_thread(backups.available, "pg_dump")
    restorers = await asyncio.to_thread(backups.available, "pg_restore")
    newest = max(dumps, key=lambda tool: tool.major)
    if newest.major == server or not any(tool.major == server for tool in restorers):
        pytest.skip("needs client tools of the server's version and of a newer one")
    await a_few_paid_bookings(client)
    before = await contents(source)

    found = backups.available
    monkeypatch.setattr(
        backups,
        "available",
        lambda program: [newest] if program == "pg_dump" else found(program),
    )
    dump = tmp_path / "roost.dump"
    monkeypatch.setenv("DATABASE_URL", source)
    assert await asyncio.to_thread(roost, ["backup", str(dump)]) == 0
    monkeypatch.setenv("DATABASE_URL", empty_database)
    assert await asyncio.to_thread(roost, ["restore", str(dump)]) == 0
    assert f"pg_restore {newest.major}." in capsys.readouterr().out
    assert await contents(empty_database) == before


def roost_env(data_dir: Path) -> dict[str, str]:
    """The environment of a `roost` that runs the embedded server in ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ROOST_ENV")}
    env["ROOST_DATA_DIR"] = str(data_dir)
    return env


def roost_command(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "app.cli", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.usefixtures("server_tools")
async def test_the_embedded_server_is_backed_up_with_its_own_pg_dump(
    data_dir: Path, empty_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = roost_env(data_dir)
    migrated = await asyncio.to_thread(roost_command, ["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    dump = tmp_path / "embedded.dump"
    backed_up = await asyncio.to_thread(roost_command, ["backup", str(dump)], env)
    assert backed_up.returncode == 0, backed_up.stderr
    assert "pginstall/bin/pg_dump" in backed_up.stdout  # the pgserver wheel's

    # ... and it restores onto another server (here the tests' one).
    monkeypatch.setenv("DATABASE_URL", empty_database)
    assert await asyncio.to_thread(roost, ["restore", str(dump)]) == 0
    connection = await asyncpg.connect(empty_database)
    try:
        version = await connection.fetchval("SELECT version_num FROM alembic_version")
        amenities = await connection.fetchval("SELECT count(*) FROM amenity")
    finally:
        await connection.close()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert amenities > 0  # reference rows the migrations wrote came along


def tool(major: int, name: str = "pg_dump") -> Tool:
    return Tool(path=Path(f"/opt/pg{major}/bin/{name}"), major=major, version=f"{major}.3")


def test_the_matching_major_version_is_preferred_then_the_nearest_newer() -> None:
    found = [tool(17), tool(14), tool(15), tool(16)]
    assert backups.choose("pg_dump", found, 15) == tool(15)
    assert backups.choose("pg_dump", [tool(17), tool(16)], 15) == tool(16)


def test_a_pg_dump_older_than_the_server_is_refused_with_the_rule() -> None:
    with pytest.raises(BackupError) as refused:
        backups.choose("pg_dump", [tool(14), tool(13)], 16)
    message = str(refused.value)
    assert "pg_dump must be at least as new as the server (PostgreSQL 16)" in message
    assert "14.3 at /opt/pg14/bin/pg_dump" in message
    assert "postgresql-client-16" in message


def test_the_password_goes_in_the_environment_not_on_the_command_line() -> None:
    target = backups.libpq_target(
        "postgresql+asyncpg://roost:s3cret@db.internal:5433/roost?ssl=require"
    )
    assert "s3cret" not in target.url
    assert target.url == "postgresql://roost@db.internal:5433/roost?sslmode=require"
    assert target.env["PGPASSWORD"] == "s3cret"
    assert target.name == "roost"
