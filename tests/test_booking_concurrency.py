"""Fifty guests want the same nights at the same moment: one gets them, the others CONFLICT.
One guest asks for many nights at once: no more holds than the cap.

The requests go through a real uvicorn server to the real database, all released at once.
"""

import asyncio
import uuid
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, select, text
from starlette.applications import Starlette
from strawberry.relay import to_base64

from app.http import create_app
from app.settings import Settings
from db.database import Database
from db.models import Booking, Listing, User
from services.bookings import flush_stay
from services.errors import Conflict
from tests.factories import make_booking, make_listing, make_user, new_booking
from tests.helpers import committed, serving

GUESTS = 50
ROUNDS = 3
CREATE = """
mutation($input: CreateBookingInput!) { createBooking(input: $input) { id status } }
"""
# Pairs of active bookings of one listing sharing a night: there must never be one.
DOUBLE_BOOKINGS = text("""
SELECT count(*) FROM booking a JOIN booking b
  ON a.listing_id = b.listing_id AND a.id < b.id
 AND daterange(a.check_in, a.check_out) && daterange(b.check_in, b.check_out)
WHERE a.status IN ('PENDING', 'CONFIRMED') AND b.status IN ('PENDING', 'CONFIRMED')
""")


async def race(
    client: httpx.AsyncClient, listing_id: str, bearers: list[str], start: date
) -> list[httpx.Response]:
    """Every guest asks for overlapping nights (each pair shares one), released at once."""
    go = asyncio.Event()

    async def attempt(index: int, token: str) -> httpx.Response:
        stay = {
            "listingId": listing_id,
            "checkIn": (start + timedelta(days=index % 3)).isoformat(),
            "checkOut": (start + timedelta(days=4)).isoformat(),
            "guests": 2,
        }
        await go.wait()
        return await client.post(
            "/graphql",
            json={"query": CREATE, "variables": {"input": stay}},
            headers={"Authorization": f"Bearer {token}"},
        )

    tasks = [asyncio.create_task(attempt(index, token)) for index, token in enumerate(bearers)]
    await asyncio.sleep(0.05)  # every request waits at the gate
    go.set()
    return await asyncio.gather(*tasks)


async def test_fifty_concurrent_requests_for_the_same_nights_book_them_once(
    app: Starlette, settings: Settings, database: Database
) -> None:
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        listing = await make_listing(session, host=host, max_guests=4)
        guests = [await make_user(session) for _ in range(GUESTS)]
    listing_id = to_base64("Listing", listing.id)
    tokens = app.state.services.session_policy.access_tokens
    bearers = [tokens.issue(guest.id, guest.roles, session_id=uuid.uuid4()) for guest in guests]

    async with serving(create_app(settings)) as base_url:
        limits = httpx.Limits(max_connections=GUESTS)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
            for round_number in range(ROUNDS):
                start = date.today() + timedelta(days=30 + 10 * round_number)
                responses = await race(client, listing_id, bearers, start)

                assert all(response.status_code == 200 for response in responses), [
                    response.text for response in responses if response.status_code != 200
                ]
                bodies = [response.json() for response in responses]
                won = [body for body in bodies if "errors" not in body]
                codes = [
                    body["errors"][0]["extensions"]["code"] for body in bodies if "errors" in body
                ]
                assert len(won) == 1, bodies
                assert won[0]["data"]["createBooking"]["status"] == "PENDING"
                assert codes == ["CONFLICT"] * (GUESTS - 1)

    async with database.read_session() as session:
        assert await session.scalar(DOUBLE_BOOKINGS) == 0
        assert await session.scalar(text("SELECT count(*) FROM booking")) == ROUNDS


HOLDS_ASKED = 12


async def test_one_guest_racing_for_many_free_nights_gets_only_the_capped_holds(
    app: Starlette, settings: Settings, database: Database
) -> None:
    cap = settings.max_pending_bookings_per_guest
    assert cap < HOLDS_ASKED
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        listings = [await make_listing(session, host=host) for _ in range(3)]
        guest = await make_user(session)
    bearer = app.state.services.session_policy.access_tokens.issue(
        guest.id, guest.roles, session_id=uuid.uuid4()
    )
    start = date.today() + timedelta(days=30)
    # Each request its own free night, spread over three listings: nothing but the cap
    # stands between any of them and a hold.
    stays = [
        {
            "listingId": to_base64("Listing", listings[index % 3].id),
            "checkIn": (start + timedelta(days=index)).isoformat(),
            "checkOut": (start + timedelta(days=index + 1)).isoformat(),
            "guests": 1,
        }
        for index in range(HOLDS_ASKED)
    ]

    async with serving(create_app(settings)) as base_url:
        limits = httpx.Limits(max_connections=HOLDS_ASKED)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
            go = asyncio.Event()

            async def attempt(stay: dict) -> httpx.Response:
                await go.wait()
                return await client.post(
                    "/graphql",
                    json={"query": CREATE, "variables": {"input": stay}},
                    headers={"Authorization": f"Bearer {bearer}"},
                )

            tasks = [asyncio.create_task(attempt(stay)) for stay in stays]
            await asyncio.sleep(0.05)  # every request waits at the gate
            go.set()
            responses = await asyncio.gather(*tasks)

    bodies = [response.json() for response in responses]
    won = [body for body in bodies if "errors" not in body]
    codes = [body["errors"][0]["extensions"]["code"] for body in bodies if "errors" in body]
    assert len(won) == cap, bodies
    assert codes == ["CONFLICT"] * (HOLDS_ASKED - cap), bodies
    async with database.read_session() as session:
        held = await session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.guest_id == guest.id, Booking.status == "PENDING")
        )
    assert held == cap


async def test_the_database_itself_refuses_two_active_stays_sharing_a_night(
    database: Database,
) -> None:
    start = date.today() + timedelta(days=30)
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        listing = await make_listing(session, host=host)
        guest = await make_user(session)
        await make_booking(
            session, listing=listing, guest=guest, check_in=start, check_out=start + timedelta(3)
        )
    # Past every check in Python, straight to the table: the constraint has the last word,
    # and the service turns its violation into CONFLICT.
    with pytest.raises(Conflict, match="not available"):
        async with committed(database) as session:
            session.add(stay(listing, guest, start + timedelta(2), start + timedelta(5)))
            await flush_stay(session)
    async with committed(database) as session:  # canceled stays hold nothing
        canceled = stay(listing, guest, start + timedelta(2), start + timedelta(5))
        canceled.status = "CANCELED"
        session.add(canceled)
        session.add(stay(listing, guest, start + timedelta(3), start + timedelta(5)))
        await flush_stay(session)


def stay(listing: Listing, guest: User, check_in: date, check_out: date) -> Booking:
    return new_booking(
        listing=listing, guest=guest, check_in=check_in, check_out=check_out, status="PENDING"
    )
