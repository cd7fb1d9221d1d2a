"""Password reset and email verification: single-use mailed tokens, and SMTP for real."""

import asyncio
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from starlette.applications import Starlette

from db.database import Database
from db.models import OneTimeToken
from gateways.email import Email, SmtpMailer
from tests.accounts_helpers import (
    ME,
    REFRESH,
    bearer,
    error_code,
    login,
    mails_to,
    register,
    token_in,
    unique_email,
)
from tests.helpers import committed, free_port, gql

REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"
RESET = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }"
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) }"
NEW_PASSWORD = "a fresh start for sure"


async def reset_token_for(client: httpx.AsyncClient, app: Starlette, email: str) -> str:
    await gql(client, REQUEST_RESET, {"e": email})
    mails = await mails_to(app, email, count=2)  # the verification mail came first
    return token_in(mails[-1])


async def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(
    client: httpx.AsyncClient, database: Database, app: Starlette
) -> None:
    email = unique_email()
    session = await register(client, email=email)
    token = await reset_token_for(client, app, email)

    assert await gql(client, RESET, {"t": token, "p": NEW_PASSWORD}) == {
        "data": {"resetPassword": True}
    }
    assert error_code(await gql(client, REFRESH, {"token": session["refreshToken"]})) == (
        "UNAUTHENTICATED"
    )
    assert error_code(await login(client, email)) == "UNAUTHENTICATED"
    assert "errors" not in await login(client, email, NEW_PASSWORD)

    again = await gql(client, RESET, {"t": token, "p": "yet another passphrase"})
    assert again["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"token": "is not valid or has expired"},
    }


async def test_a_reset_link_expires_after_an_hour(
    client: httpx.AsyncClient, database: Database, app: Starlette
) -> None:
    email = unique_email()
    await register(client, email=email)
    token = await reset_token_for(client, app, email)
    async with database.read_session() as session:
        token_row = await session.scalar(
            select(OneTimeToken).where(OneTimeToken.purpose == "password_reset")
        )
    lifetime = token_row.expires_at - token_row.created_at
    assert abs((lifetime - timedelta(hours=1)).total_seconds()) < 5, lifetime
    async with committed(database) as session:
        await session.execute(
            update(OneTimeToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert error_code(await gql(client, RESET, {"t": token, "p": NEW_PASSWORD})) == (
        "BAD_USER_INPUT"
    )


async def test_a_newer_reset_link_retires_the_older(
    client: httpx.AsyncClient, database: Database, app: Starlette
) -> None:
    email = unique_email()
    await register(client, email=email)
    older = await reset_token_for(client, app, email)
    await gql(client, REQUEST_RESET, {"e": email})
    newer = token_in((await mails_to(app, email, count=3))[-1])
    assert error_code(await gql(client, RESET, {"t": older, "p": NEW_PASSWORD})) == (
        "BAD_USER_INPUT"
    )
    assert "errors" not in await gql(client, RESET, {"t": newer, "p": NEW_PASSWORD})


async def test_a_reset_still_checks_the_new_password(
    client: httpx.AsyncClient, database: Database, app: Starlette
) -> None:
    email = unique_email()
    await register(client, email=email)
    token = await reset_token_for(client, app, email)
    body = await gql(client, RESET, {"t": token, "p": "1234567890"})
    assert body["errors"][0]["extensions"]["fields"] == {
        "newPassword": "is one of the most common passwords; choose another"
    }


async def test_the_emailed_link_verifies_the_address(
    client: httpx.AsyncClient, database: Database, app: Starlette
) -> None:
    email = unique_email()
    payload = await register(client, email=email)
    [verification] = await mails_to(app, email)
    assert verification["Subject"] == "Confirm your email for Roost"
    token = token_in(verification)

    assert await gql(client, VERIFY, {"t": token}) == {"data": {"verifyEmail": True}}
    me = await gql(client, ME, headers=bearer(payload["accessToken"]))
    assert me["data"]["me"]["emailVerified"] is True
    assert error_code(await gql(client, VERIFY, {"t": token})) == "BAD_USER_INPUT"
    async with database.read_session() as session:
        row = await session.scalar(
            select(OneTimeToken).where(OneTimeToken.purpose == "email_verification")
        )
    lifetime = row.expires_at - row.created_at
    assert abs((lifetime - timedelta(days=7)).total_seconds()) < 5, lifetime


async def test_smtp_mail_reaches_a_real_smtp_server(tmp_path: Path) -> None:
    received: list[bytes] = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope) -> str:
            received.append(envelope.content)
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = SmtpMailer(host="127.0.0.1", port=port, sender="Roost <no-reply@roost.example>")
        await mailer.send(Email(to="guest@example.com", subject="Hello", text="Welcome!"))
    finally:
        await asyncio.to_thread(controller.stop)
    [raw] = received
    message = message_from_bytes(raw)
    assert message["To"] == "guest@example.com"
    assert message["From"] == "Roost <no-reply@roost.example>"
    assert message.get_payload(decode=True).decode().strip() == "Welcome!"
