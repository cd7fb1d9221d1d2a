"""Sign-up, sign-in, no enumeration, roles and profiles, over HTTP."""

import asyncio
import io
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import argon2
import httpx
import pytest
from sqlalchemy import select, text
from starlette.applications import Starlette

from app.cli import main as roost
from app.http import create_app
from auth.passwords import PasswordHasher
from db.database import Database
from db.models import User
from tests.accounts_helpers import (
    ME,
    PASSWORD,
    bearer,
    error_code,
    login,
    mails_to,
    register,
    unique_email,
)
from tests.helpers import committed, gql, http_client, make_settings, running


@pytest.fixture
def mail_dir(app: Starlette) -> Path:
    return app.state.settings.data_dir / "mail"


async def test_a_guest_signs_up_and_is_signed_in(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client, email="Nora.Quinn@EXAMPLE.com")
    assert payload["expiresIn"] == 900
    assert payload["user"]["roles"] == ["GUEST"]
    assert payload["user"]["email"] == "Nora.Quinn@example.com"  # the domain is normalized

    me = await gql(client, ME, headers=bearer(payload["accessToken"]))
    assert me["data"]["me"]["email"] == "Nora.Quinn@example.com"
    assert me["data"]["me"]["emailVerified"] is False


REGISTER_EVERY_USER_FIELD = """
mutation($input: RegisterInput!) { register(input: $input) { user {
  id firstName lastName bio roles createdAt email phone emailVerified avatarUrl
  preferences { currency language timeZone notificationChannels }
} } }
"""


async def test_a_new_account_answers_every_field_of_its_user(
    client: httpx.AsyncClient, database: Database
) -> None:
    # The user was built in this request, not read: nothing of it may need a lazy load later.
    body = await gql(
        client,
        REGISTER_EVERY_USER_FIELD,
        {
            "input": {
                "email": unique_email(),
                "password": PASSWORD,
                "firstName": "Ana",
                "lastName": "Silva",
            }
        },
    )
    assert "errors" not in body, body
    user = body["data"]["register"]["user"]
    assert user["avatarUrl"] is None
    assert user["phone"] is None
    assert user["preferences"]["currency"] == "USD"


async def test_a_host_signs_up_as_a_host(client: httpx.AsyncClient, database: Database) -> None:
    payload = await register(client, role="HOST")
    assert payload["user"]["roles"] == ["GUEST", "HOST"]


async def test_passwords_are_stored_as_argon2id_hashes(
    client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()
    await register(client, email=email)
    async with database.read_session() as session:
        stored = await session.scalar(select(User.password_hash).where(User.email == email))
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_one_account_per_email_whatever_its_case(
    client: httpx.AsyncClient, database: Database
) -> None:
    await register(client, email="twice@example.com")
    body = await gql(
        client,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        {
            "i": {
                "email": "TWICE@example.com",
                "password": PASSWORD,
                "firstName": "A",
                "lastName": "B",
            }
        },
    )
    assert error_code(body) == "CONFLICT"


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("email", "not-an-email", "is not a valid email address"),
        ("password", "short", "must be at least 10 characters long"),
        ("password", "x" * 129, "must be at most 128 characters long"),
        ("password", "Password123", "is one of the most common passwords; choose another"),
        ("password", "qwertyuiop", "is one of the most common passwords; choose another"),
        ("firstName", "   ", "must not be empty"),
        ("lastName", "x" * 101, "must be at most 100 characters long"),
    ],
)
async def test_bad_sign_up_input_is_refused_field_by_field(
    client: httpx.AsyncClient, database: Database, field: str, value: str, problem: str
) -> None:
    registration = {
        "email": unique_email(),
        "password": PASSWORD,
        "firstName": "Ana",
        "lastName": "Silva",
        field: value,
    }
    body = await gql(
        client,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        {"i": registration},
    )
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "fields": {field: problem}}
    async with database.read_session() as session:
        assert await session.scalar(select(User.id)) is None  # nothing was stored


async def test_a_user_signs_in_with_the_right_password(
    client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()
    await register(client, email=email)
    body = await login(client, email.upper())  # any case of the address
    assert body["data"]["login"]["user"]["email"] == email


async def test_a_wrong_password_and_an_unknown_email_look_the_same(
    client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()
    await register(client, email=email)
    wrong_password = await login(client, email, "not the password at all")
    unknown_email = await login(client, unique_email("nobody"))
    assert wrong_password["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert wrong_password["errors"][0]["message"] == unknown_email["errors"][0]["message"]
    assert unknown_email["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


@pytest.fixture
def argon2_work(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every argon2 hash and verification computed while the test runs, by kind."""
    work: Counter[str] = Counter()

    def counted(kind: str) -> Callable[..., Any]:
        computed = getattr(argon2.PasswordHasher, kind)

        def compute(self: argon2.PasswordHasher, *args: Any, **kwargs: Any) -> Any:
            work[kind] += 1
            return computed(self, *args, **kwargs)

        return compute

    for kind in ("hash", "verify"):
        monkeypatch.setattr(argon2.PasswordHasher, kind, counted(kind))
    return work


async def test_an_unknown_email_costs_as_much_hashing_as_a_wrong_password(
    client: httpx.AsyncClient, database: Database, argon2_work: Counter[str]
) -> None:
    # The same argon2 work, so the same time: timing tells nothing (bench/enumeration.py shows
    # the times themselves; a clock in the suite only measures how busy the machine is).
    email = unique_email()
    await register(client, email=email)
    await login(client, unique_email("nobody"))  # the stand-in hash is made once per process
    work = []
    for address in (email, unique_email("nobody")):
        argon2_work.clear()
        assert error_code(await login(client, address, "not the password at all")) == (
            "UNAUTHENTICATED"
        )
        work.append(dict(argon2_work))
    wrong_password, unknown_email = work
    assert wrong_password == {"verify": 1}
    assert unknown_email == wrong_password


async def test_a_login_rehashes_a_password_hashed_with_older_parameters(
    client: httpx.AsyncClient, database: Database
) -> None:
    old = PasswordHasher(time_cost=2, memory_kib=8_192, max_concurrent=1)
    async with committed(database) as session:
        session.add(
            User(
                email="old@example.com",
                first_name="O",
                last_name="Ld",
                password_hash=await old.hash(PASSWORD),
            )
        )
    assert "errors" not in await login(client, "old@example.com")
    async with database.read_session() as session:
        rehashed = await session.scalar(
            select(User.password_hash).where(User.email == "old@example.com")
        )
    assert "t=1," in rehashed and "t=2," not in rehashed
    assert "errors" not in await login(client, "old@example.com")


async def test_me_is_null_for_an_anonymous_caller(client: httpx.AsyncClient) -> None:
    assert await gql(client, ME) == {"data": {"me": None}}


async def test_become_host_adds_the_role_and_the_next_refresh_carries_it(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    headers = bearer(payload["accessToken"])
    body = await gql(client, "mutation { becomeHost { roles } }", headers=headers)
    assert body["data"]["becomeHost"]["roles"] == ["GUEST", "HOST"]
    refreshed = await gql(
        client,
        "mutation($t: String!) { refreshSession(refreshToken: $t) { user { roles } } }",
        {"t": payload["refreshToken"]},
    )
    assert refreshed["data"]["refreshSession"]["user"]["roles"] == ["GUEST", "HOST"]


async def test_become_host_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    body = await gql(client, "mutation { becomeHost { roles } }")
    assert error_code(body) == "UNAUTHENTICATED"


async def test_requesting_a_password_reset_answers_true_either_way(
    client: httpx.AsyncClient, database: Database, app: Starlette
) -> None:
    email = unique_email()
    await register(client, email=email)
    query = "mutation($e: String!) { requestPasswordReset(email: $e) }"
    for address in (email, unique_email("nobody"), "not even an address"):
        assert await gql(client, query, {"e": address}) == {"data": {"requestPasswordReset": True}}
    [_, reset] = await mails_to(app, email, count=2)  # verification, then reset
    assert reset["Subject"] == "Reset your Roost password"


async def test_create_admin_grants_the_role(
    client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch, app: Starlette
) -> None:
    email = unique_email("admin")
    await register(client, email=email)
    monkeypatch.setenv("DATABASE_URL", app.state.settings.database_url)
    # An existing account is promoted without a password being read.
    stdin = io.StringIO("never read\n")
    monkeypatch.setattr(sys, "stdin", stdin)
    # The command runs its own event loop, as it does from a shell.
    assert await asyncio.to_thread(roost, ["create-admin", email]) == 0
    assert stdin.tell() == 0
    body = await login(client, email)
    assert body["data"]["login"]["user"]["roles"] == ["GUEST", "ADMIN"]


async def test_nothing_is_stored_in_clear(client: httpx.AsyncClient, database: Database) -> None:
    payload = await register(client)
    async with database.read_session() as session:
        dump = str((await session.execute(text("SELECT * FROM refresh_token"))).all())
    assert payload["refreshToken"] not in dump


async def test_a_burst_of_logins_does_not_stall_other_requests(database_url: str) -> None:
    # Production-strength hashing: each check costs real CPU time.
    settings = make_settings(database_url, argon2_time_cost=3, argon2_memory_kib=65_536)
    async with running(create_app(settings)) as app, http_client(app) as client:
        finished: list[str] = []

        async def attempt(i: int) -> None:
            await login(client, f"burst{i}@example.com", "wrong password here")
            finished.append("login")

        async def probe() -> None:
            await asyncio.sleep(0.05)  # the logins are hashing by now
            assert await gql(client, "{ __typename }") == {"data": {"__typename": "Query"}}
            finished.append("probe")

        await asyncio.gather(*(attempt(i) for i in range(6)), probe())
    assert finished[0] == "probe", finished
