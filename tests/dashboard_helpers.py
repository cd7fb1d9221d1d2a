"""Shared steps of the admin dashboard tests: an admin with a password, and signing in to
/admin through its form."""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import update
from starlette.applications import Starlette

from db.database import Database
from db.models import User
from tests.accounts_helpers import PASSWORD, bearer, register, unique_email
from tests.helpers import committed, gql

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


async def an_admin_account(
    client: httpx.AsyncClient, database: Database, *, first_name: str = "Ada"
) -> tuple[str, dict[str, str]]:
    """A new admin's email (their password is PASSWORD) and their API token's headers."""
    email = unique_email("admin")
    token = (await register(client, email=email, first_name=first_name))["accessToken"]
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == email).values(roles=["GUEST", "ADMIN"])
        )
    return email, bearer(token)


def csrf_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Posts the sign-in form as a browser would, after loading it."""
    form = await client.get("/admin/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/admin/login",
        data={"csrf": csrf_in(form.text), "email": email, "password": password},
    )


def browser(app: Starlette, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client with cookies of its own, as a browser of its own would have."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", cookies=cookies
    )


@asynccontextmanager
async def signed_in(app: Starlette, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own signed in to the dashboard as ``email``."""
    async with browser(app) as client:
        response = await sign_in(client, email)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/admin"
        yield client


MODERATION_ON = """
mutation($on: Boolean!) { updatePlatformSettings(input: { moderationEnabled: $on }) {
  moderationEnabled } }
"""


async def moderation_on(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """New listings wait for review from now on."""
    body = await gql(client, MODERATION_ON, {"on": True}, headers=admin)
    assert "errors" not in body, body
