"""Migrations, the statement timeout, a pool that heals after a restart, and the demo data."""

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.cli import _prepare_for_serving
from app.http import create_app
from app.seed import (
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    DEMO_USERS,
    demo_accounts_exist,
    seed_demo_data,
)
from auth.passwords import PasswordHasher
from db.database import Database, async_url
from db.migrate import (
    SchemaBehind,
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from db.models import Base, Booking
from db.raw import fetch
from tests.accounts_helpers import bearer, register
from tests.helpers import committed, gql, make_settings, plain_url, running


async def test_the_models_and_the_migrations_agree(database: Database) -> None:
    def diff(connection) -> list:
        context = MigrationContext.configure(connection, opts={"compare_server_default": True})
        return compare_metadata(context, Base.metadata)

    async with database.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_migrating_twice_changes_nothing(database: Database) -> None:
    before, after = await upgrade_to_head(database.engine)
    assert before == after == head_revision()


@pytest.fixture
async def empty_database(postgres_server_url: str):
    name = "roost_test_empty_" + str(id(object()))
    admin = await asyncpg.connect(plain_url(postgres_server_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield plain_url(postgres_server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_production_refuses_a_database_that_is_behind(empty_database: str) -> None:
    settings = make_settings(empty_database, env="production")
    with pytest.raises(SchemaBehind, match="Run `roost migrate`"):
        await _prepare_for_serving(settings, empty_database, embedded=False)
    app = create_app(settings)  # as gunicorn's workers build it
    with pytest.raises(SchemaBehind):
        async with running(app):
            pass
    database = Database(empty_database)
    try:
        assert await current_revision(database.engine) is None  # production never migrates
    finally:
        await database.dispose()


async def test_development_migrates_on_start(empty_database: str) -> None:
    settings = make_settings(empty_database)
    await _prepare_for_serving(settings, empty_database, embedded=False)
    database = Database(empty_database)
    try:
        assert await current_revision(database.engine) == head_revision()
    finally:
        await database.dispose()


async def test_a_slow_statement_is_cancelled_by_the_statement_timeout(database_url: str) -> None:
    database = Database(database_url, statement_timeout_ms=100)
    try:
        with pytest.raises(DBAPIError, match="statement timeout"):
            async with database.read_session() as session:
                await session.execute(text("SELECT pg_sleep(2)"))
    finally:
        await database.dispose()


async def test_the_pool_heals_after_its_connections_are_killed(database_url: str) -> None:
    database = Database(database_url)
    try:
        await database.ping()
        await fetch(database, "SELECT 1")  # the hot reads' pool holds a connection too
        # What a database restart does to every pooled connection.
        async with database.read_session() as session:
            await session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'roost' AND datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            )
        async with database.read_session() as session:
            assert await session.scalar(text("SELECT 1")) == 1
        assert (await fetch(database, "SELECT 1 AS one"))[0]["one"] == 1
    finally:
        await database.dispose()


def test_database_urls_in_their_usual_spellings_are_accepted() -> None:
    assert async_url("postgres://u:p@h:5432/d") == "postgresql+asyncpg://u:p@h:5432/d"
    socket_url = make_url(async_url("postgresql://u@/d?host=/run/pg"))
    assert socket_url.drivername == "postgresql+asyncpg"
    assert socket_url.query["host"] == "/run/pg"
    with pytest.raises(ValueError, match="PostgreSQL"):
        async_url("mysql://u@h/d")


async def test_the_demo_data_loads_once(database: Database) -> None:
    passwords = database_passwords()
    first = await seed_demo_data(database, passwords)
    second = await seed_demo_data(database, passwords)
    assert first.users_added == len(DEMO_USERS)
    assert second.users_added == 0
    assert first.sample_user_id == second.sample_user_id is not None
    assert (first.listings_added, second.listings_added) == (4, 0)
    async with database.read_session() as session:
        trips = (await session.scalars(select(Booking))).all()
    assert [(trip.status, len(trip.night_prices_minor)) for trip in trips] == [("CONFIRMED", 4)]


def database_passwords() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_kib=8_192, max_concurrent=2)


DEMO_LOGIN = """
mutation($e: String!, $p: String!) { login(email: $e, password: $p) { user { roles } } }
"""


async def test_the_demo_accounts_sign_in_with_the_printed_password(
    client: httpx.AsyncClient, database: Database
) -> None:
    await seed_demo_data(database, database_passwords())
    assert await demo_accounts_exist(database)
    for role, email in DEMO_ACCOUNTS.items():
        body = await gql(client, DEMO_LOGIN, {"e": email, "p": DEMO_PASSWORD})
        assert role.upper() in body["data"]["login"]["user"]["roles"], body


async def test_every_migration_goes_down_and_up_again(empty_database: str) -> None:
    database = Database(empty_database)
    try:
        await upgrade_to_head(database.engine)
        async with database.engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        assert await current_revision(database.engine) is None
        _, head = await upgrade_to_head(database.engine)
        assert await current_revision(database.engine) == head
    finally:
        await database.dispose()


FAIL_THE_FIRST_UPDATE = (
    "CREATE SEQUENCE retry_probe",
    """CREATE FUNCTION retry_probe() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF nextval('retry_probe') = 1 THEN  -- a sequence moves on although the update rolls back
            RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
    END $$""",
    "CREATE TRIGGER retry_probe BEFORE UPDATE ON user_account "
    "FOR EACH ROW EXECUTE FUNCTION retry_probe()",
)


async def test_a_mutation_that_could_not_be_serialized_runs_again(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    async with committed(database) as session:
        for statement in FAIL_THE_FIRST_UPDATE:
            await session.execute(text(statement))
    try:
        body = await gql(
            client,
            'mutation { updateProfile(input: {firstName: "Bea"}) { firstName } }',
            headers=bearer(payload["accessToken"]),
        )
        async with database.read_session() as session:
            runs = await session.scalar(text("SELECT last_value FROM retry_probe"))
    finally:
        async with committed(database) as session:
            await session.execute(text("DROP TRIGGER retry_probe ON user_account"))
            await session.execute(text("DROP FUNCTION retry_probe"))
            await session.execute(text("DROP SEQUENCE retry_probe"))
    assert body == {"data": {"updateProfile": {"firstName": "Bea"}}}
    assert runs == 2  # refused once, then done
