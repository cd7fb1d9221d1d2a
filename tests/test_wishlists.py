"""Wishlists: a signed-in user's named lists of saved places, their caps, privacy, shared links,
and each place's availability and price for the list's dates, a page at constant cost."""

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text, update
from starlette.applications import Starlette
from strawberry import relay

from app.http import create_app
from app.settings import Settings
from db.database import Database
from db.models import BlockedNight, Listing, NightPrice
from services import wishlists as wishlists_service
from tests.accounts_helpers import bearer, error_code, register
from tests.factories import add_photo, make_booking, make_listing, make_user
from tests.helpers import START, FakeClock, StatementCounter, committed, gql, serving

TODAY = START.date()
RACERS = 8

CREATE = "mutation($name: String!) { createWishlist(name: $name) { id name shared } }"
RENAME = "mutation($id: ID!, $name: String!) { renameWishlist(id: $id, name: $name) { id name } }"
UPDATE = """
mutation($id: ID!, $input: UpdateWishlistInput!) {
  updateWishlist(id: $id, input: $input) { id name checkIn checkOut guests }
}
"""
DELETE = "mutation($id: ID!) { deleteWishlist(id: $id) }"
ADD = """
mutation($w: ID!, $l: ID!) { addToWishlist(wishlistId: $w, listingId: $l) { id name } }
"""
REMOVE = """
mutation($w: ID!, $l: ID!) { removeFromWishlist(wishlistId: $w, listingId: $l) { id } }
"""
SHARE = "mutation($id: ID!) { shareWishlist(id: $id) { token url wishlist { id shared } } }"
UNSHARE = "mutation($id: ID!) { unshareWishlist(id: $id) { id shared } }"
ITEMS = """
  items(first: $first, after: $after) {
    edges { cursor node {
      listingId savedAt available
      quote { nights total { amount currency } }
      listing { id title savedByMe host { firstName } photos { url } }
    } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
"""
WISHLIST = f"""
query($id: ID!, $first: Int, $after: String) {{
  wishlist(id: $id) {{ id name checkIn checkOut guests shared {ITEMS} }}
}}
"""
WISHLISTS = """
query($first: Int, $after: String) {
  wishlists(first: $first, after: $after) {
    edges { node { id name } } pageInfo { hasNextPage endCursor } totalCount
  }
}
"""
SHARED = f"""
query($token: String!, $first: Int, $after: String) {{
  sharedWishlist(token: $token) {{ name checkIn checkOut guests ownerFirstName {ITEMS} }}
}}
"""
SAVED_BY_ME = "query($id: ID!) { listing(id: $id) { savedByMe } }"


def listing_gid(listing_id: int) -> str:
    return relay.to_base64("Listing", listing_id)


async def a_user(client: httpx.AsyncClient, first_name: str = "Ana") -> dict[str, str]:
    email = f"wisher-{uuid.uuid4().hex}@example.com"
    return bearer((await register(client, email=email, first_name=first_name))["accessToken"])


async def places(database: Database, count: int, **fields: object) -> list[Listing]:
    async with committed(database) as session:
        host = await make_user(
            session,
            email=f"host-{uuid.uuid4().hex}@example.com",
            roles=["GUEST", "HOST"],
            first_name="Hostname",
        )
        return [
            await make_listing(session, host=host, title=f"Place {i}", **fields)
            for i in range(count)
        ]


async def ok(
    client: httpx.AsyncClient, query: str, variables: dict, headers: dict[str, str] | None
) -> dict:
    body = await gql(client, query, variables, headers=headers)
    assert "errors" not in body, body
    return body["data"]


async def new_list(client: httpx.AsyncClient, headers: dict[str, str], name: str = "Lisbon") -> str:
    return (await ok(client, CREATE, {"name": name}, headers))["createWishlist"]["id"]


async def save(
    client: httpx.AsyncClient, headers: dict[str, str], wishlist: str, listing: Listing
) -> dict:
    return await gql(client, ADD, {"w": wishlist, "l": listing_gid(listing.id)}, headers=headers)


async def items(
    client: httpx.AsyncClient, headers: dict[str, str], wishlist: str, first: int = 50
) -> list[dict]:
    data = await ok(client, WISHLIST, {"id": wishlist, "first": first}, headers)
    return [edge["node"] for edge in data["wishlist"]["items"]["edges"]]


async def test_a_user_creates_renames_pages_and_deletes_lists(
    client: httpx.AsyncClient, database: Database
) -> None:
    ana = await a_user(client)
    first = await new_list(client, ana, "  Summer  ")
    second = await new_list(client, ana, "Winter")
    data = await ok(client, WISHLISTS, {"first": 1}, ana)
    page = data["wishlists"]
    assert [edge["node"]["name"] for edge in page["edges"]] == ["Winter"]
    assert page["pageInfo"]["hasNextPage"] and page["totalCount"] == 2
    data = await ok(client, WISHLISTS, {"first": 1, "after": page["pageInfo"]["endCursor"]}, ana)
    assert [edge["node"]["name"] for edge in data["wishlists"]["edges"]] == ["Summer"]

    renamed = await ok(client, RENAME, {"id": first, "name": "Beach"}, ana)
    assert renamed["renameWishlist"] == {"id": first, "name": "Beach"}
    wishlist = (await ok(client, WISHLIST, {"id": first, "first": 5}, ana))["wishlist"]
    assert wishlist["name"] == "Beach" and not wishlist["shared"]
    assert wishlist["items"]["edges"] == [] and wishlist["items"]["totalCount"] == 0

    updated = await ok(client, UPDATE, {"id": first, "input": {"name": "Coast"}}, ana)
    assert updated["updateWishlist"]["name"] == "Coast"
    body = await gql(client, UPDATE, {"id": first, "input": {"name": None}}, headers=ana)
    assert error_code(body) == "BAD_USER_INPUT"

    assert (await ok(client, DELETE, {"id": second}, ana))["deleteWishlist"] == second
    body = await gql(client, WISHLIST, {"id": second}, headers=ana)
    assert error_code(body) == "NOT_FOUND"
    assert error_code(await gql(client, DELETE, {"id": second}, headers=ana)) == "NOT_FOUND"
    assert (await ok(client, WISHLISTS, {}, ana))["wishlists"]["totalCount"] == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there", "nul\x00"])
async def test_names_are_bounded_plain_text(
    client: httpx.AsyncClient, database: Database, name: str
) -> None:
    ana = await a_user(client)
    body = await gql(client, CREATE, {"name": name}, headers=ana)
    assert error_code(body) == "BAD_USER_INPUT"
    assert "name" in body["errors"][0]["extensions"]["fields"]
    wishlist = await new_list(client, ana)
    body = await gql(client, RENAME, {"id": wishlist, "name": name}, headers=ana)
    assert error_code(body) == "BAD_USER_INPUT"
    assert (await ok(client, CREATE, {"name": "x" * 100}, ana))["createWishlist"]["name"]


async def test_signed_out_cannot_keep_lists(client: httpx.AsyncClient, database: Database) -> None:
    assert error_code(await gql(client, CREATE, {"name": "Mine"})) == "UNAUTHENTICATED"
    assert error_code(await gql(client, WISHLISTS, {})) == "UNAUTHENTICATED"


async def test_page_sizes_are_bounded(client: httpx.AsyncClient, database: Database) -> None:
    ana = await a_user(client)
    wishlist = await new_list(client, ana)
    for first in (0, 101):
        assert error_code(await gql(client, WISHLISTS, {"first": first}, headers=ana)) in (
            "BAD_USER_INPUT"
        )
        body = await gql(client, WISHLIST, {"id": wishlist, "first": first}, headers=ana)
        assert error_code(body) == "BAD_USER_INPUT"
    body = await gql(client, WISHLIST, {"id": wishlist, "after": "nonsense"}, headers=ana)
    assert error_code(body) == "BAD_USER_INPUT"


async def test_saving_is_idempotent_and_saved_by_me_says_who_saved(
    client: httpx.AsyncClient, database: Database
) -> None:
    [place, other] = await places(database, 2)
    ana, bea = await a_user(client), await a_user(client)
    wishlist = await new_list(client, ana)
    for _ in range(2):
        body = await save(client, ana, wishlist, place)
        assert body["data"]["addToWishlist"]["id"] == wishlist, body
    saved = await items(client, ana, wishlist)
    assert [item["listingId"] for item in saved] == [listing_gid(place.id)]
    assert saved[0]["available"] and saved[0]["quote"] is None
    assert saved[0]["listing"]["savedByMe"] is True

    def saved_by(headers: dict[str, str] | None, listing: Listing) -> object:
        return gql(client, SAVED_BY_ME, {"id": listing_gid(listing.id)}, headers=headers)

    assert (await saved_by(ana, place))["data"]["listing"]["savedByMe"] is True
    assert (await saved_by(ana, other))["data"]["listing"]["savedByMe"] is False
    assert (await saved_by(bea, place))["data"]["listing"]["savedByMe"] is False
    assert (await saved_by(None, place))["data"]["listing"]["savedByMe"] is False

    for _ in range(2):
        body = await gql(client, REMOVE, {"w": wishlist, "l": listing_gid(place.id)}, headers=ana)
        assert body["data"]["removeFromWishlist"]["id"] == wishlist, body
    assert await items(client, ana, wishlist) == []
    assert (await saved_by(ana, place))["data"]["listing"]["savedByMe"] is False

    body = await gql(client, ADD, {"w": wishlist, "l": listing_gid(10**9)}, headers=ana)
    assert error_code(body) == "NOT_FOUND"
    body = await gql(client, ADD, {"w": wishlist, "l": wishlist}, headers=ana)
    assert error_code(body) == "BAD_USER_INPUT"


async def test_another_users_list_is_not_found(
    client: httpx.AsyncClient, database: Database
) -> None:
    [place] = await places(database, 1)
    ana, bea = await a_user(client), await a_user(client)
    wishlist = await new_list(client, ana)
    assert "errors" not in await save(client, ana, wishlist, place)
    listing = listing_gid(place.id)
    for query, variables in (
        (WISHLIST, {"id": wishlist}),
        (RENAME, {"id": wishlist, "name": "Mine now"}),
        (UPDATE, {"id": wishlist, "input": {"name": "Mine now"}}),
        (DELETE, {"id": wishlist}),
        (ADD, {"w": wishlist, "l": listing}),
        (REMOVE, {"w": wishlist, "l": listing}),
        (SHARE, {"id": wishlist}),
        (UNSHARE, {"id": wishlist}),
    ):
        assert error_code(await gql(client, query, variables, headers=bea)) == "NOT_FOUND"
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert (await gql(client, node, {"id": wishlist}, headers=bea))["data"]["node"] is None
    assert (await gql(client, node, {"id": wishlist}))["data"]["node"] is None
    assert (await gql(client, node, {"id": wishlist}, headers=ana))["data"]["node"] == {
        "id": wishlist
    }
    # Untouched by all of that.
    wishlist_data = (await ok(client, WISHLIST, {"id": wishlist}, ana))["wishlist"]
    assert wishlist_data["name"] == "Lisbon" and not wishlist_data["shared"]
    assert wishlist_data["items"]["totalCount"] == 1


async def test_a_user_keeps_at_most_so_many_lists(
    client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wishlists_service, "MAX_WISHLISTS", 2)
    ana, bea = await a_user(client), await a_user(client)
    await new_list(client, ana, "one")
    await new_list(client, ana, "two")
    body = await gql(client, CREATE, {"name": "three"}, headers=ana)
    assert error_code(body) == "CONFLICT" and "2 wishlists" in body["errors"][0]["message"]
    await new_list(client, bea, "another user counts apart")


async def test_racing_requests_stay_within_the_caps(
    app: Starlette,
    settings: Settings,
    client: httpx.AsyncClient,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wishlists_service, "MAX_WISHLISTS", 2)
    monkeypatch.setattr(wishlists_service, "MAX_SAVED_PLACES", 2)
    listings = await places(database, RACERS)
    ana = await a_user(client)
    saving = await new_list(client, ana, "saving")

    async with serving(create_app(settings)) as base_url:
        limits = httpx.Limits(max_connections=RACERS)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as racer:
            go = asyncio.Event()

            async def attempt(query: str, variables: dict) -> dict:
                await go.wait()
                return await gql(racer, query, variables, headers=ana)

            tasks = [
                asyncio.create_task(attempt(CREATE, {"name": f"list {i}"})) for i in range(RACERS)
            ] + [
                asyncio.create_task(attempt(ADD, {"w": saving, "l": listing_gid(listing.id)}))
                for listing in listings
            ]
            # Writes to the lists wait behind this lock while every request reads what it
            # reads, so without the lock on the user each would count what the others add.
            async with database.sessionmaker() as blocker, blocker.begin():
                await blocker.execute(
                    text("LOCK TABLE wishlist, wishlist_item IN SHARE ROW EXCLUSIVE MODE")
                )
                await asyncio.sleep(0.05)  # every request waits at the gate
                go.set()
                await asyncio.sleep(1)
            bodies = await asyncio.gather(*tasks)
    creations, additions = bodies[:RACERS], bodies[RACERS:]
    # The list made before the race counts: one more fits.
    assert sum("errors" not in body for body in creations) == 1, creations
    assert sum("errors" not in body for body in additions) == 2, additions
    assert {error_code(body) for body in bodies if "errors" in body} == {"CONFLICT"}
    assert (await ok(client, WISHLISTS, {}, ana))["wishlists"]["totalCount"] == 2
    assert len(await items(client, ana, saving)) == 2


async def test_a_user_saves_at_most_so_many_places_over_all_lists(
    client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wishlists_service, "MAX_SAVED_PLACES", 2)
    [a, b, c] = await places(database, 3)
    ana = await a_user(client)
    first, second = await new_list(client, ana, "one"), await new_list(client, ana, "two")
    assert "errors" not in await save(client, ana, first, a)
    assert "errors" not in await save(client, ana, second, b)
    body = await save(client, ana, first, c)
    assert error_code(body) == "CONFLICT" and "2 places" in body["errors"][0]["message"]
    # Saving again what a list holds adds nothing, so it is no past the cap.
    assert "errors" not in await save(client, ana, first, a)
    bodies = await asyncio.gather(*(save(client, ana, second, c) for _ in range(3)))
    assert all(error_code(body) == "CONFLICT" for body in bodies)
    await gql(client, REMOVE, {"w": first, "l": listing_gid(a.id)}, headers=ana)
    assert "errors" not in await save(client, ana, first, c)


async def test_a_shared_link_shows_the_list_read_only_and_nothing_else_of_its_owner(
    client: httpx.AsyncClient, database: Database
) -> None:
    [place] = await places(database, 1)
    email = "owner.private@example.com"
    owner = bearer((await register(client, email=email, first_name="Olga"))["accessToken"])
    wishlist = await new_list(client, owner, "Our trip")
    await new_list(client, owner, "Secret other list")
    assert "errors" not in await save(client, owner, wishlist, place)

    body = await gql(client, SHARED, {"token": "not-a-token"})
    assert error_code(body) == "NOT_FOUND"
    share = (await ok(client, SHARE, {"id": wishlist}, owner))["shareWishlist"]
    token = share["token"]
    assert share["wishlist"] == {"id": wishlist, "shared": True}
    assert share["url"].endswith(f"/wishlists/shared/{token}") and len(token) >= 32

    stranger = await a_user(client, "Sam")
    for headers in (None, stranger):
        response = await client.post(
            "/graphql", json={"query": SHARED, "variables": {"token": token}}, headers=headers
        )
        body = response.json()
        assert "errors" not in body, body
        shared = body["data"]["sharedWishlist"]
        assert shared["name"] == "Our trip" and shared["ownerFirstName"] == "Olga"
        [item] = [edge["node"] for edge in shared["items"]["edges"]]
        assert item["listing"]["title"] == "Place 0" and item["available"]
        assert item["listing"]["savedByMe"] is False
        assert email not in response.text and "Silva" not in response.text
        assert "Secret" not in response.text
    # Nothing of the owner's account can even be asked for.
    body = await gql(client, "query($t: String!) { sharedWishlist(token: $t) { owner { email } } }",
                     {"t": token})  # fmt: skip
    assert body["errors"] and body.get("data") is None
    # Read-only: the stranger changes nothing through it.
    for query, variables in (
        (ADD, {"w": wishlist, "l": listing_gid(place.id)}),
        (RENAME, {"id": wishlist, "name": "Mine"}),
        (DELETE, {"id": wishlist}),
    ):
        assert error_code(await gql(client, query, variables, headers=stranger)) == "NOT_FOUND"
        assert error_code(await gql(client, query, variables)) == "UNAUTHENTICATED"

    # Sharing again makes a new link: the old one stops working; unsharing ends it.
    again = (await ok(client, SHARE, {"id": wishlist}, owner))["shareWishlist"]["token"]
    assert again != token
    assert error_code(await gql(client, SHARED, {"token": token})) == "NOT_FOUND"
    assert (await ok(client, SHARED, {"token": again}, None))["sharedWishlist"]["name"]
    assert (await ok(client, UNSHARE, {"id": wishlist}, owner))["unshareWishlist"][
        "shared"
    ] is False
    assert error_code(await gql(client, SHARED, {"token": again})) == "NOT_FOUND"


async def test_places_no_longer_open_to_guests_show_as_unavailable(
    client: httpx.AsyncClient, database: Database
) -> None:
    listings = await places(database, 6)
    ana = await a_user(client)
    wishlist = await new_list(client, ana)
    for listing in listings:
        assert "errors" not in await save(client, ana, wishlist, listing)
    [open_, deleted, unlisted, suspended, flagged, pending] = [row.id for row in listings]
    async with committed(database) as session:
        for listing_id, values in (
            (deleted, {"deleted_at": START}),
            (unlisted, {"status": "UNLISTED"}),
            (suspended, {"status": "SUSPENDED"}),
            (flagged, {"moderation": "FLAGGED"}),
            (pending, {"moderation": "PENDING_REVIEW"}),
        ):
            await session.execute(update(Listing).where(Listing.id == listing_id).values(values))
    saved = {item["listingId"]: item for item in await items(client, ana, wishlist)}
    assert len(saved) == 6
    assert saved[listing_gid(open_)]["available"] and saved[listing_gid(open_)]["listing"]
    for listing_id in (deleted, unlisted, suspended, flagged, pending):
        assert saved[listing_gid(listing_id)]["available"] is False
        assert saved[listing_gid(listing_id)]["listing"] is None
    # A place nobody may see cannot be saved anew.
    other = await new_list(client, ana, "other")
    body = await gql(client, ADD, {"w": other, "l": listing_gid(deleted)}, headers=ana)
    assert error_code(body) == "NOT_FOUND"


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


async def test_dates_on_a_list_show_availability_and_price_of_each_place(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    listings = await places(
        database,
        5,
        nightly_price={"amount": Decimal("100"), "currency": "EUR"},
        cleaning_fee={"amount": Decimal("30"), "currency": "EUR"},
        max_guests=4,
        min_nights=1,
    )
    [free, booked, blocked, short, small] = listings
    async with committed(database) as session:
        guest = await make_user(session, email=f"guest-{uuid.uuid4().hex}@example.com")
        await make_booking(
            session,
            listing=booked,
            guest=guest,
            check_in=TODAY + timedelta(days=11),
            check_out=TODAY + timedelta(days=12),
        )
        session.add(BlockedNight(listing_id=blocked.id, night=TODAY + timedelta(days=12)))
        await session.execute(update(Listing).where(Listing.id == short.id).values(min_nights=5))
        await session.execute(update(Listing).where(Listing.id == small.id).values(max_guests=2))
        # One night of the free place costs more.
        session.add(
            NightPrice(listing_id=free.id, night=TODAY + timedelta(days=11), price_minor=20_000)
        )
    ana = await a_user(client)
    wishlist = await new_list(client, ana)
    for listing in listings:
        assert "errors" not in await save(client, ana, wishlist, listing)

    input_ = {"checkIn": day(10), "checkOut": day(13), "guests": 3}
    data = await ok(client, UPDATE, {"id": wishlist, "input": input_}, ana)
    assert data["updateWishlist"]["checkIn"] == day(10)
    assert data["updateWishlist"]["guests"] == 3
    saved = {item["listingId"]: item for item in await items(client, ana, wishlist)}
    assert saved[listing_gid(free.id)]["available"] is True
    # 100 + 200 + 100 nights, 30 cleaning, 14% service fee on 430.
    assert saved[listing_gid(free.id)]["quote"] == {
        "nights": 3,
        "total": {"amount": "490.20", "currency": "EUR"},
    }
    quote = await ok(
        client,
        "query($l: ID!, $i: Date!, $o: Date!) { quote(listingId: $l, checkIn: $i, checkOut: $o, "
        "guests: 3) { total { amount } } }",
        {"l": listing_gid(free.id), "i": day(10), "o": day(13)},
        ana,
    )
    assert quote["quote"]["total"]["amount"] == "490.20"
    for listing in (booked, blocked, short, small):
        item = saved[listing_gid(listing.id)]
        assert item["available"] is False and item["quote"] is None, listing.title
        assert item["listing"] is not None

    # Dates in the past are nobody's to book.
    await ok(
        client, UPDATE, {"id": wishlist, "input": {"checkIn": day(-3), "checkOut": day(-1)}}, ana
    )
    assert not any(item["available"] for item in await items(client, ana, wishlist))
    # Cleared, every open place is available again and priced for nothing.
    data = await ok(
        client, UPDATE, {"id": wishlist, "input": {"checkIn": None, "checkOut": None}}, ana
    )
    assert data["updateWishlist"]["checkIn"] is None and data["updateWishlist"]["guests"] is None
    assert all(
        item["available"] and item["quote"] is None for item in await items(client, ana, wishlist)
    )

    for bad in (
        {"checkIn": day(10)},
        {"checkIn": day(10), "checkOut": day(10)},
        {"checkIn": day(10), "checkOut": day(400)},
        {"checkIn": day(10), "checkOut": day(12), "guests": 0},
        {"checkIn": day(10), "checkOut": day(12), "guests": 51},
        {"guests": 2},
    ):
        body = await gql(client, UPDATE, {"id": wishlist, "input": bad}, headers=ana)
        assert error_code(body) == "BAD_USER_INPUT", bad


async def test_a_page_of_places_with_dates_costs_the_same_statements_whatever_its_size(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    listings = await places(database, 20)
    async with committed(database) as session:
        for i, listing in enumerate(listings):
            await add_photo(session, listing, f"w{i}")
    ana = await a_user(client)
    small, big = await new_list(client, ana, "small"), await new_list(client, ana, "big")
    for listing in listings:
        assert "errors" not in await save(client, ana, big, listing)
    for listing in listings[:2]:
        assert "errors" not in await save(client, ana, small, listing)
    stay = {"checkIn": day(10), "checkOut": day(13), "guests": 2}
    for wishlist in (small, big):
        await ok(client, UPDATE, {"id": wishlist, "input": stay}, ana)

    counts = {}
    for wishlist, size in ((small, 2), (big, 20)):
        with StatementCounter(database) as counter:
            data = await ok(client, WISHLIST, {"id": wishlist, "first": 20}, ana)
        edges = data["wishlist"]["items"]["edges"]
        assert len(edges) == size
        assert all(edge["node"]["quote"] and edge["node"]["listing"]["photos"] for edge in edges)
        counts[size] = counter.count
    assert counts[2] == counts[20], counts
