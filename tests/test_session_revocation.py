"""An ended session takes its access tokens with it at once, in every server process.

Each way a session ends is followed by a request with the access token issued for it, which must
be refused (UNAUTHENTICATED, reason TOKEN_INVALID) on the very next request. Then: another app
instance on the same database refuses it too, from its memory; and the listening connection,
killed, is replaced while the database answers for it in the meantime.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from sqlalchemy import func, update
from starlette.applications import Starlette

from app.http import create_app
from app.settings import Settings
from auth.revocations import IS_REVOKED, RevokedSessions
from auth.tokens import token_digest
from db.database import Database
from db.models import RefreshToken, User
from tests.accounts_helpers import (
    ME,
    PASSWORD,
    REFRESH,
    bearer,
    login,
    mails_to,
    register,
    token_in,
    unique_email,
)
from tests.helpers import StatementCounter, committed, gql, http_client, plain_url, running

LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"
CHANGE_PASSWORD = """
mutation($c: String!, $n: String!) {
  changePassword(currentPassword: $c, newPassword: $n) { accessToken }
}"""
SUSPEND = "mutation($id: ID!) { suspendUser(userId: $id) { id } }"
REVOKED = {
    "data": None,
    "errors": [
        {
            "message": (
                "Your access token is not valid or its session has ended; refresh the session, "
                "or sign in again."
            ),
            "extensions": {"code": "UNAUTHENTICATED", "reason": "TOKEN_INVALID"},
        }
    ],
}


def revocation_checks(counter: StatementCounter) -> int:
    """How many times the database itself was asked whether a session has ended."""
    return counter.statements.count(IS_REVOKED)


async def signed_in(client: httpx.AsyncClient) -> dict:
    """A new account, its session checked to work."""
    payload = await register(client)
    me = await gql(client, ME, headers=bearer(payload["accessToken"]))
    assert me["data"]["me"]["id"] == payload["user"]["id"]
    return payload


async def logout(client: httpx.AsyncClient, payload: dict) -> None:
    body = await gql(client, LOGOUT, {"t": payload["refreshToken"]})
    assert body == {"data": {"logout": True}}


async def reuse_refresh_token(client: httpx.AsyncClient, payload: dict) -> None:
    assert "errors" not in await gql(client, REFRESH, {"token": payload["refreshToken"]})
    replay = await gql(client, REFRESH, {"token": payload["refreshToken"]})
    assert replay["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def change_password(client: httpx.AsyncClient, payload: dict) -> None:
    # From another session of the same user: every session ends, this one included.
    other = (await login(client, payload["user"]["email"]))["data"]["login"]
    body = await gql(
        client,
        CHANGE_PASSWORD,
        {"c": PASSWORD, "n": "an entirely new passphrase"},
        headers=bearer(other["accessToken"]),
    )
    assert "errors" not in body, body


async def reset_password(client: httpx.AsyncClient, payload: dict, app: Starlette) -> None:
    email = payload["user"]["email"]
    await gql(client, "mutation($e: String!) { requestPasswordReset(email: $e) }", {"e": email})
    [_, reset] = await mails_to(app, email, count=2)  # verification, then reset
    body = await gql(
        client,
        "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
        {"t": token_in(reset), "p": "an entirely new passphrase"},
    )
    assert body == {"data": {"resetPassword": True}}


async def suspend(client: httpx.AsyncClient, payload: dict, database: Database) -> None:
    admin_email = unique_email("admin")
    await register(client, email=admin_email)
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == admin_email).values(roles=["GUEST", "ADMIN"])
        )
    admin = (await login(client, admin_email))["data"]["login"]
    body = await gql(
        client, SUSPEND, {"id": payload["user"]["id"]}, headers=bearer(admin["accessToken"])
    )
    assert "errors" not in body, body


@pytest.mark.parametrize(
    "end_session",
    ["logout", "reused refresh token", "changePassword", "resetPassword", "suspendUser"],
)
async def test_an_ended_session_refuses_its_access_token_on_the_next_request(
    app: Starlette, client: httpx.AsyncClient, database: Database, end_session: str
) -> None:
    payload = await signed_in(client)
    ends: dict[str, Callable[[], Awaitable[None]]] = {
        "logout": lambda: logout(client, payload),
        "reused refresh token": lambda: reuse_refresh_token(client, payload),
        "changePassword": lambda: change_password(client, payload),
        "resetPassword": lambda: reset_password(client, payload, app),
        "suspendUser": lambda: suspend(client, payload, database),
    }
    await ends[end_session]()
    assert await gql(client, ME, headers=bearer(payload["accessToken"])) == REVOKED
    # Mutations and public queries alike.
    body = await gql(
        client, "mutation { becomeHost { id } }", headers=bearer(payload["accessToken"])
    )
    assert body == REVOKED
    assert await gql(client, "{ amenities { code } }", headers=bearer(payload["accessToken"])) == (
        REVOKED
    )


async def test_other_sessions_of_the_user_live_on_after_a_logout(
    client: httpx.AsyncClient, database: Database
) -> None:
    laptop = await signed_in(client)
    phone = (await login(client, laptop["user"]["email"]))["data"]["login"]
    await logout(client, laptop)
    assert await gql(client, ME, headers=bearer(laptop["accessToken"])) == REVOKED
    me = await gql(client, ME, headers=bearer(phone["accessToken"]))
    assert me["data"]["me"]["id"] == laptop["user"]["id"]


async def wait_until_listening(revoked: RevokedSessions, *, other_than: int | None = None) -> None:
    async with asyncio.timeout(10):
        while not revoked.trusted or revoked.listener_pid == other_than:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@asynccontextmanager
async def second_instance(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another Roost on the same database, as another replica or worker process would be."""
    async with running(create_app(settings)) as other, http_client(other) as client:
        await wait_until_listening(other.state.services.revoked_sessions)
        yield client


async def test_a_logout_through_one_instance_is_refused_at_once_by_another(
    app: Starlette, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with second_instance(settings) as other:
        for _ in range(5):
            payload = await signed_in(client)
            assert "errors" not in await gql(other, ME, headers=bearer(payload["accessToken"]))
            await logout(client, payload)
            with StatementCounter(database) as counter:
                assert await gql(other, ME, headers=bearer(payload["accessToken"])) == REVOKED
            # Known from the notice alone: no question to the database.
            assert revocation_checks(counter) == 0


async def test_an_instance_started_after_a_revocation_knows_of_it(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    payload = await signed_in(client)
    await logout(client, payload)
    async with second_instance(settings) as later:
        with StatementCounter(database) as counter:
            assert await gql(later, ME, headers=bearer(payload["accessToken"])) == REVOKED
        assert revocation_checks(counter) == 0  # it loaded the revocation on connecting


async def test_a_token_costs_no_extra_database_round_trip_while_listening(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    payload = await signed_in(client)
    await wait_until_listening(app.state.services.revoked_sessions)
    with StatementCounter(database) as counter:
        assert await gql(client, "{ __typename }", headers=bearer(payload["accessToken"])) == {
            "data": {"__typename": "Query"}
        }
    assert counter.count == 0


async def test_a_killed_listener_is_replaced_and_revocations_hold_meanwhile(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    revoked: RevokedSessions = app.state.services.revoked_sessions
    await wait_until_listening(revoked)
    killed = revoked.listener_pid
    before, during, after = [await signed_in(client) for _ in range(3)]

    async def refused(application_name: str) -> None:
        raise ConnectionRefusedError("the test keeps the listener out for now")

    # The listener's new connections are refused for a while; the pool's keep working.
    monkeypatch.setattr(database, "dedicated_connection", refused)
    admin = await asyncpg.connect(plain_url(database_url))
    try:
        # Waits (up to 5 s) until the backend is gone.
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", killed)
    finally:
        await admin.close()
    async with asyncio.timeout(5):
        while revoked.trusted:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await logout(client, during)  # no listener hears this one
    with StatementCounter(database) as counter:
        assert await gql(client, ME, headers=bearer(during["accessToken"])) == REVOKED
        live = await gql(client, ME, headers=bearer(before["accessToken"]))
        assert live["data"]["me"]["id"] == before["user"]["id"]
    assert revocation_checks(counter) == 2  # the database answered, token by token

    monkeypatch.undo()
    await wait_until_listening(revoked, other_than=killed)
    await logout(client, after)
    with StatementCounter(database) as counter:
        assert await gql(client, ME, headers=bearer(during["accessToken"])) == REVOKED
        assert await gql(client, ME, headers=bearer(after["accessToken"])) == REVOKED
        assert "errors" not in await gql(client, ME, headers=bearer(before["accessToken"]))
    assert revocation_checks(counter) == 0  # answered from memory again, the missed one too


async def test_the_database_answers_while_nobody_listens(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    revoked: RevokedSessions = app.state.services.revoked_sessions
    payload = await signed_in(client)
    await revoked.stop()
    try:
        assert not revoked.trusted
        with StatementCounter(database) as counter:
            assert "errors" not in await gql(client, ME, headers=bearer(payload["accessToken"]))
            await logout(client, payload)
            assert await gql(client, ME, headers=bearer(payload["accessToken"])) == REVOKED
        assert revocation_checks(counter) == 2
    finally:
        revoked.start()
    await wait_until_listening(revoked)


async def test_a_session_ended_by_hand_in_the_database_ends_everywhere(
    app: Starlette, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    """An operator's own UPDATE during an incident is announced like the API's revocations."""
    async with second_instance(settings) as other:
        payload = await signed_in(client)
        async with committed(database) as session:
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.token_hash == token_digest(payload["refreshToken"]))
                .values(revoked_at=func.now())
            )
        await app.state.services.revoked_sessions.settle()  # every process has heard it
        with StatementCounter(database) as counter:
            assert await gql(client, ME, headers=bearer(payload["accessToken"])) == REVOKED
            assert await gql(other, ME, headers=bearer(payload["accessToken"])) == REVOKED
        assert revocation_checks(counter) == 0
