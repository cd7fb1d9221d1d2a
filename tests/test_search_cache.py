"""Cached searches end when what they show changes, whoever changes it, and invalidating them
makes writers of different listings wait for nobody."""

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.database import Database, sqlstate
from db.models import SEARCH_GENERATION_SHARDS, Booking, Listing, User
from services import listings as listings_service
from services.search_cache import current_generation
from tests.factories import make_booking, make_listing, make_user
from tests.helpers import committed, gql

SOON = date.today() + timedelta(days=30)
STAY = {"checkIn": SOON.isoformat(), "checkOut": (SOON + timedelta(days=2)).isoformat()}
SEARCH = """
query($filter: ListingFilter) {
  searchListings(filter: $filter) {
    edges { node { title host { firstName } photos { caption }
                   calendar(from: "%s", to: "%s") { price { amount } } } }
  }
}
""" % (STAY["checkIn"], STAY["checkOut"])  # noqa: UP031 (the braces of GraphQL)


async def search(client: httpx.AsyncClient, **filter: Any) -> list[dict]:
    body = await gql(client, SEARCH, {"filter": filter or None})
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["searchListings"]["edges"]]


@pytest.fixture
async def listing(database: Database) -> tuple[User, Listing]:
    async with committed(database) as session:
        host = await make_user(session, first_name="Ana", roles=["GUEST", "HOST"])
        return host, await make_listing(session, host=host, title="river flat")


async def sql(database: Database, statement: str, **values: Any) -> None:
    async with committed(database) as session:
        await session.execute(text(statement), values)


async def pending_booking(database: Database, listing: Listing) -> Booking:
    async with committed(database) as session:
        guest = await make_user(session)
        return await make_booking(
            session,
            listing=listing,
            guest=guest,
            check_in=SOON,
            check_out=SOON + timedelta(days=1),
            status="PENDING",
        )


# Each change is made without any service, and shows in the next anonymous search at once.
CHANGES = {
    "a listing's title": (
        {},
        "UPDATE listing SET title = 'renamed' WHERE id = :listing",
        lambda found: [hit["title"] for hit in found] == ["renamed"],
    ),
    "a closed night": (
        STAY,
        "INSERT INTO blocked_night (listing_id, night) VALUES (:listing, :soon)",
        lambda found: found == [],
    ),
    "a night's price": (
        {},
        "INSERT INTO night_price (listing_id, night, price_minor) VALUES (:listing, :soon, 12345)",
        lambda found: found[0]["calendar"][0]["price"]["amount"] == "123.45",
    ),
    "a photo": (
        {},
        "WITH u AS (INSERT INTO upload"
        " (owner_id, storage_key, thumbnail_key, content_type, width, height, byte_size)"
        " VALUES (:host, 'p.jpg', 'p-t.jpg', 'image/jpeg', 10, 10, 1) RETURNING id)"
        " INSERT INTO listing_photo (listing_id, upload_id, position, caption)"
        " SELECT :listing, id, 0, 'the view' FROM u",
        lambda found: found[0]["photos"] == [{"caption": "the view"}],
    ),
    "the host's name": (
        {},
        "UPDATE user_account SET first_name = 'Beatriz' WHERE id = :host",
        lambda found: found[0]["host"] == {"firstName": "Beatriz"},
    ),
}


@pytest.mark.parametrize("change", CHANGES)
async def test_a_change_made_with_plain_sql_retires_cached_searches(
    client: httpx.AsyncClient, database: Database, listing: tuple[User, Listing], change: str
) -> None:
    host, flat = listing
    filter, statement, shows = CHANGES[change]
    before = await search(client, **filter)
    assert before and not shows(before)
    assert await search(client, **filter) == before  # from the cache now
    await sql(database, statement, listing=flat.id, host=host.id, soon=SOON)
    assert shows(await search(client, **filter))


async def test_a_new_exchange_rate_retires_cached_price_searches(
    client: httpx.AsyncClient, database: Database, listing: tuple[User, Listing]
) -> None:
    # The flat costs 100 EUR (108 USD) a night; 150 EUR are 162 USD, then 75.
    cheap = {"maxPrice": "150", "currency": "EUR"}
    assert len(await search(client, **cheap)) == 1
    assert len(await search(client, **cheap)) == 1  # from the cache now
    async with committed(database) as session:
        rate = await session.scalar(
            text("SELECT usd_per_unit FROM exchange_rate WHERE currency = 'EUR'")
        )
    reprice = "UPDATE exchange_rate SET usd_per_unit = :rate WHERE currency = 'EUR'"
    await sql(database, reprice, rate=0.5)
    try:
        assert await search(client, **cheap) == []
    finally:  # a reference table, kept between tests
        await sql(database, reprice, rate=rate)


async def test_a_stay_taking_or_freeing_nights_retires_cached_searches(
    client: httpx.AsyncClient, database: Database, listing: tuple[User, Listing]
) -> None:
    _, flat = listing
    assert len(await search(client, **STAY)) == 1
    booking = await pending_booking(database, flat)
    assert await search(client, **STAY) == []
    await sql(database, "UPDATE booking SET status = 'CANCELED' WHERE id = :id", id=booking.id)
    assert len(await search(client, **STAY)) == 1


async def test_what_search_does_not_show_leaves_cached_searches_alone(
    database: Database, listing: tuple[User, Listing]
) -> None:
    host, flat = listing
    booking = await pending_booking(database, flat)
    generation = await current_generation(database)
    # Paid and confirmed, the stay holds the same nights: nothing a search shows moved.
    await sql(
        database,
        "UPDATE booking SET status = 'CONFIRMED', expires_at = NULL WHERE id = :id",
        id=booking.id,
    )
    await sql(
        database, "UPDATE user_account SET email = 'new@example.com' WHERE id = :id", id=host.id
    )
    assert await current_generation(database) == generation


async def test_writers_of_listings_in_different_shards_do_not_wait_for_each_other(
    database: Database,
) -> None:
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        first, second = [await make_listing(session, host=host) for _ in range(2)]
    assert first.id % SEARCH_GENERATION_SHARDS != second.id % SEARCH_GENERATION_SHARDS
    generation = await current_generation(database)

    async with committed(database) as holding:
        await listings_service.block_nights(
            holding, actor=host, listing_id=first.id, start=SOON, end=SOON + timedelta(days=1)
        )
        # The first writer holds its listing's shard, and only that one, until it commits.
        async with committed(database) as other:
            await other.execute(text("SET LOCAL lock_timeout = '2s'"))
            with pytest.raises(DBAPIError) as waited:
                async with other.begin_nested():
                    await other.execute(
                        text(
                            "SELECT 1 FROM search_generation WHERE shard = :shard FOR UPDATE NOWAIT"
                        ),
                        {"shard": first.id % SEARCH_GENERATION_SHARDS},
                    )
            assert sqlstate(waited.value) == "55P03"  # lock_not_available
            # A writer of another listing goes through, and commits, while the first is open.
            await listings_service.block_nights(
                other, actor=host, listing_id=second.id, start=SOON, end=SOON + timedelta(days=1)
            )
        assert await current_generation(database) == generation + 1
    assert await current_generation(database) == generation + 2
