"""Admins suspend a listing (out of search at once, even for a cached search; its host cannot
republish it) and restore it, each audited with the reason."""

import httpx

from db.database import Database
from tests.accounts_helpers import error_code
from tests.booking_helpers import a_place, book
from tests.helpers import gql
from tests.listing_helpers import UPDATE
from tests.receipt_helpers import an_admin

SUSPEND = """
mutation($id: ID!, $reason: String!) { suspendListing(id: $id, reason: $reason) { id status } }
"""
RESTORE = "mutation($id: ID!) { restoreListing(id: $id) { id status } }"
SEARCH = "{ searchListings { totalCount edges { node { id } } } }"
AUDIT = "{ auditLog(first: 5) { edges { node { action reason subjectId before after } } } }"


async def found(client: httpx.AsyncClient) -> list[str]:
    body = await gql(client, SEARCH)
    assert "errors" not in body, body
    return [edge["node"]["id"] for edge in body["data"]["searchListings"]["edges"]]


async def test_a_suspended_listing_leaves_search_at_once_and_comes_back_when_restored(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    admin = await an_admin(client, database)
    assert await found(client) == [place.listing_id]  # and now cached

    reason = {"id": place.listing_id, "reason": "Photos of another property."}
    suspended = await gql(client, SUSPEND, reason, headers=admin)
    assert suspended["data"]["suspendListing"]["status"] == "SUSPENDED"
    assert await found(client) == []
    assert error_code(await book(client, place, 5, 7)) in {"NOT_FOUND", "CONFLICT"}
    republish = await gql(
        client, UPDATE, {"id": place.listing_id, "input": {"publish": True}}, headers=place.as_host
    )
    assert error_code(republish) == "BAD_USER_INPUT"
    assert error_code(await gql(client, SUSPEND, reason, headers=admin)) == "CONFLICT"

    restored = await gql(client, RESTORE, {"id": place.listing_id}, headers=admin)
    assert restored["data"]["restoreListing"]["status"] == "PUBLISHED"
    assert await found(client) == [place.listing_id]
    assert error_code(await gql(client, RESTORE, {"id": place.listing_id}, headers=admin)) == (
        "CONFLICT"
    )

    restore, suspend = (await gql(client, AUDIT, headers=admin))["data"]["auditLog"]["edges"]
    assert suspend["node"] == {
        "action": "listing.suspend",
        "reason": "Photos of another property.",
        "subjectId": place.listing_id,
        "before": {"status": "PUBLISHED"},
        "after": {"status": "SUSPENDED"},
    }
    assert restore["node"]["action"] == "listing.restore"


async def test_a_suspension_needs_a_plain_reason(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    admin = await an_admin(client, database)
    for reason in ("", "   ", "x" * 501, "bad\u0000"):
        body = await gql(client, SUSPEND, {"id": place.listing_id, "reason": reason}, headers=admin)
        assert error_code(body) == "BAD_USER_INPUT", reason
    assert await found(client) == [place.listing_id]
