"""Listing moderation: with the setting on, new and edited listings wait for an admin out of
search and booking; admins approve them or flag them with a reason (out of search at once, the
cached answers too), each decision audited and told to the host; a flagged listing edited goes
back to review."""

import httpx
from sqlalchemy import select
from starlette.applications import Starlette

from app.seed import seed_demo_data
from auth.passwords import PasswordHasher
from db.database import Database
from db.models import Listing
from services import moderation
from tests.accounts_helpers import bearer, error_code, mails_to, register, unique_email
from tests.booking_helpers import a_place, book, day
from tests.helpers import committed, gql
from tests.listing_helpers import create, host_token
from tests.receipt_helpers import an_admin

SEARCH = "{ searchListings(first: 50) { edges { node { id title } } } }"
QUEUE = """
query($state: ListingModeration, $first: Int, $after: String) {
  moderationQueue(state: $state, first: $first, after: $after) {
    edges { cursor node { id title moderation moderationReason } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""
APPROVE = "mutation($id: ID!) { approveListing(id: $id) { id moderation moderationReason } }"
FLAG = """
mutation($id: ID!, $reason: String!) {
  flagListing(id: $id, reason: $reason) { id moderation moderationReason }
}
"""
MODERATION = "query($id: ID!) { listing(id: $id) { id moderation moderationReason } }"
UPDATE = """
mutation($id: ID!, $input: UpdateListingInput!) {
  updateListing(id: $id, input: $input) { id status moderation }
}
"""
SETTINGS = """
mutation($on: Boolean!) { updatePlatformSettings(input: { moderationEnabled: $on }) {
  moderationEnabled } }
"""
AUDIT = """
query($action: String) { auditLog(first: 20, action: $action) {
  edges { node { action subjectId before after reason } } } }
"""
NOTIFICATIONS = "{ notifications(first: 10) { edges { node { kind title body } } } }"
QUOTE = """
query($id: ID!, $in: Date!, $out: Date!) {
  quote(listingId: $id, checkIn: $in, checkOut: $out, guests: 2) { total { amount } }
}
"""


async def searched(client: httpx.AsyncClient) -> list[str]:
    body = await gql(client, SEARCH)
    assert "errors" not in body, body
    return [edge["node"]["id"] for edge in body["data"]["searchListings"]["edges"]]


async def moderation_on(client: httpx.AsyncClient, admin: dict[str, str], on: bool = True) -> None:
    body = await gql(client, SETTINGS, {"on": on}, headers=admin)
    assert "errors" not in body, body


async def queue(client: httpx.AsyncClient, admin: dict[str, str], **variables: object) -> dict:
    body = await gql(client, QUEUE, variables, headers=admin)
    assert "errors" not in body, body
    return body["data"]["moderationQueue"]


async def test_flagging_takes_a_listing_out_of_cached_search_at_once_and_tells_its_host(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    host_email = unique_email("host")
    host = (await register(client, email=host_email, role="HOST"))["accessToken"]
    listing = await create(client, host, title="Loft by the river")
    other = await a_place(client, title="Another place")
    assert set(await searched(client)) == {other.listing_id, listing["id"]}  # cached now

    flagged = await gql(
        client, FLAG, {"id": listing["id"], "reason": "Photos of another flat."}, headers=admin
    )
    assert flagged["data"]["flagListing"] == {
        "id": listing["id"],
        "moderation": "FLAGGED",
        "moderationReason": "Photos of another flat.",
    }
    assert await searched(client) == [other.listing_id]
    # Nobody but its host and the admins sees it, nor books it.
    assert (await gql(client, MODERATION, {"id": listing["id"]}))["data"]["listing"] is None
    seen = await gql(client, MODERATION, {"id": listing["id"]}, headers=bearer(host))
    assert seen["data"]["listing"]["moderation"] == "FLAGGED"
    assert seen["data"]["listing"]["moderationReason"] == "Photos of another flat."
    variables = {"id": listing["id"], "in": day(10), "out": day(12)}
    assert error_code(await gql(client, QUOTE, variables)) == "NOT_FOUND"

    [mail] = [
        m for m in await mails_to(app, host_email, count=2) if "needs changes" in m["Subject"]
    ]
    assert mail["Subject"] == "Loft by the river needs changes"
    notes = (await gql(client, NOTIFICATIONS, headers=bearer(host)))["data"]["notifications"]
    [note] = [edge["node"] for edge in notes["edges"]]
    assert note["kind"] == "LISTING_FLAGGED"
    assert "Photos of another flat." in note["body"]

    log = (await gql(client, AUDIT, {"action": "listing.flag"}, headers=admin))["data"]
    [entry] = [edge["node"] for edge in log["auditLog"]["edges"]]
    assert entry["before"] == {"moderation": "APPROVED", "moderation_reason": None}
    assert entry["after"] == {
        "moderation": "FLAGGED",
        "moderation_reason": "Photos of another flat.",
    }
    assert entry["reason"] == "Photos of another flat."

    approved = await gql(client, APPROVE, {"id": listing["id"]}, headers=admin)
    assert approved["data"]["approveListing"]["moderation"] == "APPROVED"
    assert listing["id"] in await searched(client)
    again = await gql(client, APPROVE, {"id": listing["id"]}, headers=admin)
    assert error_code(again) == "CONFLICT"


async def test_with_moderation_on_a_new_listing_waits_until_an_admin_approves_it(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    before = await a_place(client, title="Approved before")  # made while moderation was off
    await moderation_on(client, admin)
    place = await a_place(client, title="New and waiting")
    drafter = await host_token(client)
    draft = await create(client, drafter, title="A draft", publish=False)

    assert await searched(client) == [before.listing_id]
    assert error_code(await book(client, place, 10, 12)) == "NOT_FOUND"
    own = await gql(client, MODERATION, {"id": place.listing_id}, headers=place.as_host)
    assert own["data"]["listing"]["moderation"] == "PENDING_REVIEW"
    # Another user sees neither the listing nor its moderation.
    assert (await gql(client, MODERATION, {"id": place.listing_id}, headers=place.as_guest))[
        "data"
    ]["listing"] is None
    assert (await gql(client, MODERATION, {"id": before.listing_id}, headers=place.as_guest))[
        "data"
    ]["listing"] == {"id": before.listing_id, "moderation": None, "moderationReason": None}

    waiting = await queue(client, admin)
    assert [edge["node"]["id"] for edge in waiting["edges"]] == [place.listing_id]
    assert waiting["totalCount"] == 1

    # The draft waits once it is published, behind the listing that waited first.
    published = await gql(
        client, UPDATE, {"id": draft["id"], "input": {"publish": True}}, headers=bearer(drafter)
    )
    assert published["data"]["updateListing"]["moderation"] == "PENDING_REVIEW"
    waiting = await queue(client, admin)
    assert [edge["node"]["id"] for edge in waiting["edges"]] == [place.listing_id, draft["id"]]

    approved = await gql(client, APPROVE, {"id": place.listing_id}, headers=admin)
    assert approved["data"]["approveListing"]["moderation"] == "APPROVED"
    assert set(await searched(client)) == {before.listing_id, place.listing_id}
    assert "errors" not in await book(client, place, 10, 12)
    assert [edge["node"]["id"] for edge in (await queue(client, admin))["edges"]] == [draft["id"]]

    log = (await gql(client, AUDIT, {"action": "listing.approve"}, headers=admin))["data"]
    [entry] = [edge["node"] for edge in log["auditLog"]["edges"]]
    assert entry["before"]["moderation"] == "PENDING_REVIEW"
    assert entry["after"]["moderation"] == "APPROVED"
    notes = (await gql(client, NOTIFICATIONS, headers=place.as_host))["data"]["notifications"]
    assert notes["edges"] == []  # told by the worker, which has not run yet
    await mails_to(app, "nobody@example.com", count=0)  # a worker pass
    notes = (await gql(client, NOTIFICATIONS, headers=place.as_host))["data"]["notifications"]
    assert [edge["node"]["kind"] for edge in notes["edges"]] == ["LISTING_APPROVED"]


async def test_a_draft_published_and_a_listing_edited_go_back_to_review(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    host = await host_token(client)
    as_host = bearer(host)
    listing = await create(client, host, title="Edited later")
    draft = await create(client, host, title="Drafted", publish=False)
    await moderation_on(client, admin)

    # Prices and the calendar need no look; the title does.
    priced = await gql(
        client,
        UPDATE,
        {"id": listing["id"], "input": {"nightlyPrice": {"amount": "120", "currency": "EUR"}}},
        headers=as_host,
    )
    assert priced["data"]["updateListing"]["moderation"] == "APPROVED"
    same = await gql(
        client, UPDATE, {"id": listing["id"], "input": {"title": "Edited later"}}, headers=as_host
    )
    assert same["data"]["updateListing"]["moderation"] == "APPROVED"  # nothing new to see
    retitled = await gql(
        client, UPDATE, {"id": listing["id"], "input": {"title": "Now a palace"}}, headers=as_host
    )
    assert retitled["data"]["updateListing"]["moderation"] == "PENDING_REVIEW"
    assert listing["id"] not in await searched(client)

    edited_draft = await gql(
        client, UPDATE, {"id": draft["id"], "input": {"title": "Still a draft"}}, headers=as_host
    )
    assert edited_draft["data"]["updateListing"]["moderation"] == "APPROVED"
    published = await gql(
        client, UPDATE, {"id": draft["id"], "input": {"publish": True}}, headers=as_host
    )
    assert published["data"]["updateListing"] == {
        "id": draft["id"],
        "status": "PUBLISHED",
        "moderation": "PENDING_REVIEW",
    }
    # The longest waiting first, a page at a time.
    first = await queue(client, admin, first=1)
    assert [edge["node"]["id"] for edge in first["edges"]] == [listing["id"]]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await queue(client, admin, first=1, after=first["pageInfo"]["endCursor"])
    assert [edge["node"]["id"] for edge in rest["edges"]] == [draft["id"]]
    assert rest["pageInfo"]["hasNextPage"] is False

    # An admin's own edit waits for nobody.
    await gql(client, APPROVE, {"id": listing["id"]}, headers=admin)
    by_admin = await gql(
        client, UPDATE, {"id": listing["id"], "input": {"title": "Fixed by Roost"}}, headers=admin
    )
    assert by_admin["data"]["updateListing"]["moderation"] == "APPROVED"


async def test_a_flagged_listing_edited_goes_back_to_review_even_with_moderation_off(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    await gql(client, FLAG, {"id": place.listing_id, "reason": "Misleading title"}, headers=admin)
    priced = await gql(
        client,
        UPDATE,
        {"id": place.listing_id, "input": {"minNights": 2}},
        headers=place.as_host,
    )
    assert priced["data"]["updateListing"]["moderation"] == "FLAGGED"
    fixed = await gql(
        client,
        UPDATE,
        {"id": place.listing_id, "input": {"title": "An honest title"}},
        headers=place.as_host,
    )
    assert fixed["data"]["updateListing"]["moderation"] == "PENDING_REVIEW"
    flagged = await queue(client, admin, state="FLAGGED")
    assert flagged["edges"] == []
    [waiting] = (await queue(client, admin))["edges"]
    assert waiting["node"]["id"] == place.listing_id
    assert waiting["node"]["moderationReason"] == "Misleading title"  # the flag's, for review


async def test_moderation_inputs_are_bounded_and_admins_only(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    for reason in ("", "   ", "x" * 501, "bad\x00reason"):
        body = await gql(client, FLAG, {"id": place.listing_id, "reason": reason}, headers=admin)
        assert error_code(body) == "BAD_USER_INPUT", reason
        assert set(body["errors"][0]["extensions"]["fields"]) == {"reason"}
    assert error_code(await gql(client, QUEUE, {"first": 101}, headers=admin)) == "BAD_USER_INPUT"
    bad_cursor = await gql(client, QUEUE, {"after": "nope"}, headers=admin)
    assert error_code(bad_cursor) == "BAD_USER_INPUT"
    missing = await gql(client, APPROVE, {"id": "TGlzdGluZzo5OTk5OTk="}, headers=admin)
    assert error_code(missing) == "NOT_FOUND"
    for headers in (place.as_guest, place.as_host):
        assert error_code(await gql(client, QUEUE, {}, headers=headers)) == "FORBIDDEN"
        assert error_code(
            await gql(client, APPROVE, {"id": place.listing_id}, headers=headers)
        ) == ("FORBIDDEN")
        flag = await gql(client, FLAG, {"id": place.listing_id, "reason": "x"}, headers=headers)
        assert error_code(flag) == "FORBIDDEN"
    audit = (await gql(client, AUDIT, {"action": None}, headers=admin))["data"]["auditLog"]
    assert audit["edges"] == []


async def test_a_service_helper_makes_a_listing_wait(
    client: httpx.AsyncClient, database: Database
) -> None:
    """What the dashboard's tests use to have something in the queue."""
    admin = await an_admin(client, database)
    place = await a_place(client)
    async with committed(database) as session:
        listing = await session.scalar(select(Listing))
        assert listing is not None
        moderation.send_for_review(listing, now=listing.created_at)
    [waiting] = (await queue(client, admin))["edges"]
    assert waiting["node"]["id"] == place.listing_id
    assert await searched(client) == []


async def test_the_demo_data_leaves_a_listing_waiting_when_moderation_is_on(
    client: httpx.AsyncClient, database: Database
) -> None:
    await seed_demo_data(
        database,
        PasswordHasher(time_cost=1, memory_kib=8_192, max_concurrent=2),
        moderation_on=True,
    )
    admin = await an_admin(client, database)
    [waiting] = (await queue(client, admin))["edges"]
    assert waiting["node"]["title"] == "Sea-view cottage in Camps Bay"
    assert len(await searched(client)) == 3
