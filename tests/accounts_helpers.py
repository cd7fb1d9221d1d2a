"""Shared steps of the identity tests: sign up, sign in, read the mail Roost sent."""

import email
import itertools
import re
from email.message import Message
from pathlib import Path

import httpx
from starlette.applications import Starlette

from app.wiring import build_worker
from tests.helpers import gql

PASSWORD = "correct horse battery staple"
_serial = itertools.count(1)

AUTH_FIELDS = "accessToken refreshToken expiresIn user { id email roles firstName }"
REGISTER = f"""
mutation($input: RegisterInput!) {{ register(input: $input) {{ {AUTH_FIELDS} }} }}
"""
LOGIN = f"""
mutation($email: String!, $password: String!) {{
  login(email: $email, password: $password) {{ {AUTH_FIELDS} }}
}}
"""
REFRESH = f"""
mutation($token: String!) {{ refreshSession(refreshToken: $token) {{ {AUTH_FIELDS} }} }}
"""
ME = "{ me { id email roles firstName lastName phone emailVerified } }"


def unique_email(name: str = "user") -> str:
    return f"{name}{next(_serial)}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    role: str = "GUEST",
    first_name: str = "Ana",
) -> dict:
    """Signs up and answers the AuthPayload; fails the test on any error."""
    body = await gql(
        client,
        REGISTER,
        {
            "input": {
                "email": email or unique_email(),
                "password": password,
                "firstName": first_name,
                "lastName": "Silva",
                "role": role,
            }
        },
    )
    assert "errors" not in body, body
    return body["data"]["register"]


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict:
    return await gql(client, LOGIN, {"email": email, "password": password})


def error_code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


async def mails_to(app: Starlette, address: str, *, count: int = 1) -> list[Message]:
    """The messages sent to ``address``, once a worker pass has sent what the outbox holds."""
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()
    mail_dir = app.state.settings.data_dir / "mail"
    found = [message for message in _read_mails(mail_dir) if message["To"] == address]
    assert len(found) >= count, f"{count} message(s) to {address} never arrived"
    return found


def _read_mails(mail_dir: Path) -> list[Message]:
    return [email.message_from_bytes(path.read_bytes()) for path in sorted(mail_dir.glob("*.eml"))]


def token_in(message: Message) -> str:
    [text] = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    body = text.get_payload(decode=True).decode()
    match = re.search(r"token=([A-Za-z0-9_-]+)", body)
    assert match, body
    return match.group(1)
