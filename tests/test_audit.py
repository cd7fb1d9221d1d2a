"""The audit log: each admin change is recorded with who, what, when, before and after; only
admins read it; nobody edits or erases it, not even with the application's own credentials."""

import asyncio
import io
import sys

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette

from app.cli import main as roost
from db.database import Database
from tests.accounts_helpers import error_code, register, unique_email
from tests.booking_helpers import a_place
from tests.helpers import FakeClock, committed, gql
from tests.receipt_helpers import an_admin
from tests.review_helpers import (
    HIDE,
    UNHIDE,
    a_paid_stay,
    complete_stays,
    reviewed,
)

AUDIT_LOG = """
query($first: Int, $after: String, $action: String, $actor: ID, $subject: ID) {
  auditLog(first: $first, after: $after, action: $action, actorId: $actor, subjectId: $subject) {
    edges { cursor node { id action subjectType subjectId before after reason createdAt
                          actor { id } } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""
SUSPEND = "mutation($id: ID!) { suspendUser(userId: $id) { id } }"
REINSTATE = "mutation($id: ID!) { reinstateUser(userId: $id) { id } }"
ME = "{ me { id } }"


async def log_of(client: httpx.AsyncClient, admin: dict[str, str], **filters: object) -> dict:
    body = await gql(client, AUDIT_LOG, filters, headers=admin)
    assert "errors" not in body, body
    return body["data"]["auditLog"]


async def my_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return (await gql(client, ME, headers=headers))["data"]["me"]["id"]


async def test_suspending_and_reinstating_are_recorded_with_who_and_what(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    admin_id = await my_id(client, admin)
    user = await register(client)
    user_id = user["user"]["id"]
    assert "errors" not in await gql(client, SUSPEND, {"id": user_id}, headers=admin)
    assert "errors" not in await gql(client, REINSTATE, {"id": user_id}, headers=admin)

    log = await log_of(client, admin, subject=user_id)
    assert log["totalCount"] == 2
    reinstated, suspended = (edge["node"] for edge in log["edges"])
    assert suspended["action"] == "user.suspend"
    assert (suspended["before"], suspended["after"]) == (
        {"status": "ACTIVE"},
        {"status": "SUSPENDED"},
    )
    assert reinstated["action"] == "user.reinstate"
    assert reinstated["after"] == {"status": "ACTIVE"}
    for entry in (suspended, reinstated):
        assert entry["actor"] == {"id": admin_id}
        assert (entry["subjectType"], entry["subjectId"]) == ("User", user_id)
    assert (await log_of(client, admin, action="user.suspend"))["totalCount"] == 1
    assert (await log_of(client, admin, actor=admin_id))["totalCount"] == 2

    # A page at a time, newest first.
    first = await log_of(client, admin, first=1)
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await log_of(client, admin, first=1, after=first["pageInfo"]["endCursor"])
    assert rest["edges"][0]["node"]["action"] == "user.suspend"


async def test_hiding_and_showing_a_review_are_recorded_with_the_reason(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    stay = await a_paid_stay(client, await a_place(client), 1, 2)
    await complete_stays(app, clock, 3)
    review = await reviewed(client, stay, rating=1)
    admin = await an_admin(client, database)
    hide = {"id": review["id"], "reason": "Abusive language."}
    assert "errors" not in await gql(client, HIDE, hide, headers=admin)
    assert "errors" not in await gql(client, UNHIDE, {"id": review["id"]}, headers=admin)

    shown, hidden = (edge["node"] for edge in (await log_of(client, admin))["edges"])
    assert (hidden["action"], hidden["reason"]) == ("review.hide", "Abusive language.")
    assert (hidden["subjectType"], hidden["subjectId"]) == ("Review", review["id"])
    assert shown["action"] == "review.unhide"
    assert shown["before"] == {"hidden": True, "reason": "Abusive language."}


async def test_an_operator_granting_admin_is_recorded_without_an_actor(
    app: Starlette, client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = unique_email("operator-made")
    user = await register(client, email=email)
    monkeypatch.setenv("DATABASE_URL", app.state.settings.database_url)
    assert await asyncio.to_thread(roost, ["create-admin", email]) == 0
    admin = await an_admin(client, database)
    [entry] = [
        edge["node"] for edge in (await log_of(client, admin, action="user.grant_role"))["edges"]
    ]
    assert entry["actor"] is None
    assert entry["subjectId"] == user["user"]["id"]
    assert entry["before"] == {"roles": ["GUEST"]}
    assert entry["after"] == {"roles": ["ADMIN", "GUEST"]}


async def test_an_operator_creating_an_admin_account_is_recorded(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = unique_email("brand-new-admin")
    monkeypatch.setenv("DATABASE_URL", app.state.settings.database_url)
    monkeypatch.setenv("ROOST_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ROOST_ARGON2_MEMORY_KIB", "8192")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long and uncommon passphrase\n"))
    assert await asyncio.to_thread(roost, ["create-admin", email]) == 0
    admin = await an_admin(client, database)
    created = await log_of(client, admin, action="user.create_admin")
    [entry] = [edge["node"] for edge in created["edges"]]
    assert (entry["actor"], entry["before"]) == (None, None)
    assert entry["after"] == {"roles": ["ADMIN", "GUEST"]}


async def test_only_admins_read_the_log(client: httpx.AsyncClient, database: Database) -> None:
    admin = await an_admin(client, database)
    user = await register(client)
    await gql(client, SUSPEND, {"id": user["user"]["id"]}, headers=admin)
    [edge] = (await log_of(client, admin))["edges"]
    place = await a_place(client)
    for headers in (place.as_guest, place.as_host):
        assert error_code(await gql(client, AUDIT_LOG, headers=headers)) == "FORBIDDEN"
        node = await gql(
            client,
            "query($id: ID!) { node(id: $id) { id } }",
            {"id": edge["node"]["id"]},
            headers=headers,
        )
        assert node == {"data": {"node": None}}
    assert error_code(await gql(client, AUDIT_LOG)) == "UNAUTHENTICATED"
    too_many = await gql(client, AUDIT_LOG, {"first": 101}, headers=admin)
    assert error_code(too_many) == "BAD_USER_INPUT", too_many


@pytest.mark.parametrize(
    "change",
    ["UPDATE audit_entry SET action = 'nothing'", "DELETE FROM audit_entry"],
)
async def test_nobody_edits_or_erases_the_log(
    client: httpx.AsyncClient, database: Database, change: str
) -> None:
    admin = await an_admin(client, database)
    user = await register(client)
    await gql(client, SUSPEND, {"id": user["user"]["id"]}, headers=admin)
    with pytest.raises(DBAPIError, match="the audit log is never changed"):
        async with committed(database) as session:
            await session.execute(text(change))
    assert (await log_of(client, admin))["edges"][0]["node"]["action"] == "user.suspend"
