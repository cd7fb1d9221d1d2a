"""There is always an active admin: the last one cannot be suspended, by herself or by a race.

The races go through a real uvicorn server to the real database, both requests released at once.
"""

import asyncio

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from app.cli import main as roost
from app.http import create_app
from db.database import Database
from db.models import User
from db.states import UserStatus
from tests.accounts_helpers import ME, bearer, error_code, login, register, unique_email
from tests.helpers import committed, gql, make_settings, serving

SUSPEND = "mutation($id: ID!) { suspendUser(userId: $id) { id } }"
REINSTATE = "mutation($id: ID!) { reinstateUser(userId: $id) { id } }"
ROUNDS = 8


async def signed_up_admin(client: httpx.AsyncClient, database: Database) -> dict:
    """A new account made admin as an operator would; answers its login payload."""
    email = unique_email("admin")
    await register(client, email=email)
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == email).values(roles=["GUEST", "ADMIN"])
        )
    body = await login(client, email)
    assert "errors" not in body, body
    return body["data"]["login"]


async def active_admins(database: Database) -> int:
    async with database.read_session() as session:
        return await session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.status == UserStatus.ACTIVE, User.roles.any_() == "ADMIN")
        )


async def test_the_only_admin_cannot_suspend_herself(
    client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch, app: Starlette
) -> None:
    email = unique_email("admin")
    await register(client, email=email)
    monkeypatch.setenv("DATABASE_URL", app.state.settings.database_url)
    assert await asyncio.to_thread(roost, ["create-admin", email]) == 0
    admin = (await login(client, email))["data"]["login"]

    body = await gql(
        client, SUSPEND, {"id": admin["user"]["id"]}, headers=bearer(admin["accessToken"])
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert "last active admin" in error["message"]

    assert await active_admins(database) == 1
    me = await gql(client, ME, headers=bearer(admin["accessToken"]))
    assert me["data"]["me"]["roles"] == ["GUEST", "ADMIN"]
    guest = await register(client)  # and she is still an admin who can act
    body = await gql(
        client, SUSPEND, {"id": guest["user"]["id"]}, headers=bearer(admin["accessToken"])
    )
    assert body["data"]["suspendUser"]["id"] == guest["user"]["id"], body


async def test_an_admin_may_step_down_only_while_another_admin_remains(
    client: httpx.AsyncClient, database: Database
) -> None:
    ana, bo = await signed_up_admin(client, database), await signed_up_admin(client, database)

    async def suspend(actor: dict, target: dict) -> dict:
        return await gql(
            client, SUSPEND, {"id": target["user"]["id"]}, headers=bearer(actor["accessToken"])
        )

    assert "errors" not in await suspend(ana, bo)
    assert error_code(await suspend(ana, ana)) == "CONFLICT"  # Bo is suspended: she is the last
    body = await gql(
        client, REINSTATE, {"id": bo["user"]["id"]}, headers=bearer(ana["accessToken"])
    )
    assert "errors" not in body, body
    assert "errors" not in await suspend(ana, ana)  # now Bo remains
    bo = (await login(client, bo["user"]["email"]))["data"]["login"]  # his sessions had ended
    assert error_code(await suspend(bo, bo)) == "CONFLICT"
    assert await active_admins(database) == 1


async def race(client: httpx.AsyncClient, moves: list[tuple[dict, dict]]) -> list[httpx.Response]:
    """Each (actor, target) suspension sent at the same moment."""
    go = asyncio.Event()

    async def attempt(actor: dict, target: dict) -> httpx.Response:
        await go.wait()
        return await client.post(
            "/graphql",
            json={"query": SUSPEND, "variables": {"id": target["user"]["id"]}},
            headers=bearer(actor["accessToken"]),
        )

    tasks = [asyncio.create_task(attempt(actor, target)) for actor, target in moves]
    await asyncio.sleep(0.05)  # both wait at the gate
    go.set()
    return await asyncio.gather(*tasks)


async def test_two_admins_suspending_each_other_at_once_leave_one_admin(
    database_url: str, database: Database
) -> None:
    settings = make_settings(
        database_url,
        auth_attempts_per_minute_per_ip=1_000,
        auth_attempts_per_minute_per_account=1_000,
    )
    async with serving(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            admins = [await signed_up_admin(client, database) for _ in range(2)]
            for round_number in range(ROUNDS):
                async with committed(database) as session:
                    await session.execute(update(User).values(status=UserStatus.ACTIVE))
                ana, bo = [
                    (await login(client, admin["user"]["email"]))["data"]["login"]
                    for admin in admins
                ]
                # Half the rounds they suspend each other, half themselves: either way, not both.
                moves = [(ana, bo), (bo, ana)] if round_number % 2 == 0 else [(ana, ana), (bo, bo)]
                bodies = [response.json() for response in await race(client, moves)]

                won = [body for body in bodies if "errors" not in body]
                lost = [error_code(body) for body in bodies if "errors" in body]
                assert len(won) == 1, bodies
                assert lost[0] in {"CONFLICT", "FORBIDDEN", "UNAUTHENTICATED"}, bodies
                assert await active_admins(database) == 1
