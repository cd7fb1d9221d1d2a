"""listing_calendar, search's copy of each listing's taken nights, follows every calendar write.

The database fixture checks the whole table against booking and blocked_night after every test
(tests/conftest.py), so each booking, calendar and import test checks it too; these tests make
the writes that matter one at a time, through the API and as plain SQL, and look at the value.
"""

import asyncio
from datetime import timedelta

import asyncpg
import httpx
from sqlalchemy import delete, update
from strawberry.relay import from_base64

from db.database import Database
from db.models import BlockedNight, Booking
from db.raw import statement_listeners
from services import search as search_service
from tests.booking_helpers import (
    CANCEL,
    DECLINE,
    MODIFY,
    TODAY,
    a_place,
    booked,
    day,
    pay,
)
from tests.factories import make_booking, make_listing, make_user
from tests.helpers import calendar_drift, committed, gql, plain_url
from tests.listing_helpers import BLOCK


def node_id_of(global_id: str) -> int:
    return int(from_base64(global_id)[1])


UNBLOCK = (
    "mutation($id: ID!, $f: Date!, $t: Date!) { unblockDates(listingId: $id, from: $f, to: $t) }"
)


async def taken(database: Database, listing_id: int) -> str:
    async with (await database.reads()).acquire() as connection:
        value = await connection.fetchval(
            "SELECT taken_nights::text FROM listing_calendar WHERE listing_id = $1", listing_id
        )
    assert isinstance(value, str)
    return value


def nights(*ranges: tuple[int, int]) -> str:
    """The multirange text of [today + a, today + b) ranges, as PostgreSQL prints it."""
    return "{" + ",".join(f"[{day(a)},{day(b)})" for a, b in ranges) + "}"


async def test_every_kind_of_calendar_write_through_the_api_moves_the_taken_nights(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    listing_id = node_id_of(place.listing_id)
    assert await taken(database, listing_id) == "{}"  # made with the listing

    hold = await booked(client, place, 10, 13)  # a PENDING hold takes its nights
    assert await taken(database, listing_id) == nights((10, 13))
    await pay(client, place, hold["id"])  # CONFIRMED: the same nights
    assert await taken(database, listing_id) == nights((10, 13))
    changed = await gql(
        client,
        MODIFY,
        {"id": hold["id"], "in": day(11), "out": day(15), "guests": 2},
        headers=place.as_guest,
    )
    assert "errors" not in changed, changed
    assert await taken(database, listing_id) == nights((11, 15))

    blocked = await gql(
        client, BLOCK, {"id": place.listing_id, "f": day(15), "t": day(17)}, headers=place.as_host
    )
    assert "errors" not in blocked, blocked
    assert await taken(database, listing_id) == nights((11, 17))  # adjacent nights merge
    opened = await gql(
        client, UNBLOCK, {"id": place.listing_id, "f": day(16), "t": day(17)}, headers=place.as_host
    )
    assert "errors" not in opened, opened
    assert await taken(database, listing_id) == nights((11, 16))

    canceled = await gql(client, CANCEL, {"id": hold["id"]}, headers=place.as_guest)
    assert "errors" not in canceled, canceled
    assert await taken(database, listing_id) == nights((15, 16))
    assert await calendar_drift(database) == []


async def test_a_declined_request_frees_its_nights(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client, instantBook=False)
    listing_id = node_id_of(place.listing_id)
    request = await booked(client, place, 20, 22)
    await pay(client, place, request["id"])
    assert await taken(database, listing_id) == nights((20, 22))
    declined = await gql(client, DECLINE, {"id": request["id"]}, headers=place.as_host)
    assert "errors" not in declined, declined
    assert await taken(database, listing_id) == "{}"


async def test_plain_sql_writers_keep_it_too(database: Database) -> None:
    """Scripts and bulk writes (the calendar imports' many rows in one statement) go through
    the same triggers: no writer can leave search's copy behind."""
    soon = TODAY + timedelta(days=40)
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        guest = await make_user(session)
        first = await make_listing(session, host=host, title="first")
        second = await make_listing(session, host=host, title="second")
        stay = await make_booking(
            session, listing=first, guest=guest, check_in=soon, check_out=soon + timedelta(3)
        )
        pending = await make_booking(
            session,
            listing=second,
            guest=guest,
            check_in=soon,
            check_out=soon + timedelta(2),
            status="PENDING",
        )
        session.add_all(
            BlockedNight(listing_id=listing.id, night=soon + timedelta(days=10 + n))
            for listing in (first, second)
            for n in range(3)
        )
    assert await calendar_drift(database) == []
    steps = [
        # A lapsed hold, as the worker's bulk expiry writes it.
        update(Booking).where(Booking.id == pending.id).values(status="CANCELED"),
        # A stay moved to another listing, then deleted.
        update(Booking).where(Booking.id == stay.id).values(listing_id=second.id),
        delete(Booking).where(Booking.id == stay.id),
        # Closed nights moved, then opened in one statement across both listings.
        update(BlockedNight)
        .where(BlockedNight.listing_id == first.id)
        .values(night=BlockedNight.night + 30),
        delete(BlockedNight).where(BlockedNight.night < soon + timedelta(days=20)),
    ]
    for step in steps:
        async with committed(database) as session:
            await session.execute(step)
        assert await calendar_drift(database) == [], step
    assert await taken(database, second.id) == "{}"
    start = soon + timedelta(days=40)
    assert await taken(database, first.id) == f"{{[{start},{start + timedelta(3)})}}"


async def test_concurrent_writers_of_one_listing_both_show(
    database: Database, database_url: str
) -> None:
    """Two transactions free nights of the same listing at once, neither holding its row lock
    (a guest's and a host's cancellations lock only their booking): the second recomputes
    after the first commits, so neither change is lost."""
    soon = TODAY + timedelta(days=60)
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        guest = await make_user(session)
        listing = await make_listing(session, host=host)
        one, two = [
            await make_booking(
                session,
                listing=listing,
                guest=guest,
                check_in=soon + timedelta(days=start),
                check_out=soon + timedelta(days=start + 2),
            )
            for start in (0, 5)
        ]
    first = await asyncpg.connect(plain_url(database_url))
    second = await asyncpg.connect(plain_url(database_url))
    try:
        await first.execute("BEGIN")
        await first.execute("UPDATE booking SET status = 'CANCELED' WHERE id = $1", one.id)
        await second.execute("BEGIN")
        waiting = asyncio.create_task(
            second.execute("UPDATE booking SET status = 'CANCELED' WHERE id = $1", two.id)
        )
        await asyncio.sleep(0.2)
        assert not waiting.done()  # it queues behind the first
        await first.execute("COMMIT")
        await waiting
        await second.execute("COMMIT")
    finally:
        await first.close()
        await second.close()
    assert await taken(database, listing.id) == "{}"


async def test_dated_search_reads_the_taken_nights(database: Database) -> None:
    soon = TODAY + timedelta(days=30)
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        guest = await make_user(session)
        free, booked_place = [
            await make_listing(session, host=host, title=title) for title in ("free", "booked")
        ]
        await make_booking(
            session, listing=booked_place, guest=guest, check_in=soon, check_out=soon + timedelta(2)
        )
    search = search_service.SearchFilter(
        check_in=soon + timedelta(1), check_out=soon + timedelta(4)
    )
    page = await search_service.search_listings(database, search, amenity_ids={}, with_total=True)
    assert [row.id for row in page.rows] == [free.id]
    assert (page.total_count, page.total_count_is_exact) == (1, True)
    # Change the copy behind the triggers' back: search follows it, not the bookings.
    async with (await database.reads()).acquire() as connection:
        await connection.execute(
            "UPDATE listing_calendar SET taken_nights = '{}' WHERE listing_id = $1",
            booked_place.id,
        )
    page = await search_service.search_listings(database, search, amenity_ids={})
    assert sorted(row.id for row in page.rows) == sorted([free.id, booked_place.id])
    async with (await database.reads()).acquire() as connection:  # as it was, for the fixture
        await connection.execute(
            "UPDATE listing_calendar SET taken_nights = listing_taken_nights(listing_id)"
        )


async def test_total_count_is_exact_up_to_the_cap_then_says_there_are_more(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        for n in range(4):
            await make_listing(session, host=host, title=f"place {n}")
    everything = search_service.SearchFilter()

    async def counted(cap: int) -> tuple[int | None, bool]:
        page = await search_service.search_listings(
            database, everything, first=1, amenity_ids={}, with_total=True, count_cap=cap
        )
        return page.total_count, page.total_count_is_exact

    assert await counted(5) == (4, True)
    assert await counted(4) == (4, True)  # exactly the cap is still exact
    assert await counted(3) == (3, False)  # more than 3: "3+"
    assert await counted(1) == (1, False)
    body = await gql(client, "{ searchListings(first: 1) { totalCount totalCountIsExact } }")
    assert body == {"data": {"searchListings": {"totalCount": 4, "totalCountIsExact": True}}}
    # Asked alone, totalCountIsExact still counts.
    body = await gql(client, "{ searchListings(first: 1) { totalCountIsExact } }")
    assert body == {"data": {"searchListings": {"totalCountIsExact": True}}}


async def test_the_count_stops_one_past_the_cap(database: Database) -> None:
    statements: list[str] = []
    statement_listeners.append(statements.append)
    try:
        await search_service.search_listings(
            database, search_service.SearchFilter(), amenity_ids={}, with_total=True
        )
    finally:
        statement_listeners.remove(statements.append)
    [count] = [s for s in statements if s.startswith("SELECT count(*)")]
    assert count.endswith(f"LIMIT {search_service.COUNT_CAP + 1}) AS capped")
