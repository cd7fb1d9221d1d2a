"""Bookings over HTTP: the rules of booking, paying, answering and reading."""

import httpx

from db.database import Database
from tests.accounts_helpers import error_code
from tests.booking_helpers import (
    a_place,
    book,
    booked,
    pay,
    read,
)
from tests.conftest import FakeClock


async def test_a_guest_books_and_pays_an_instant_booking(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 13)
    assert booking["status"] == "PENDING"
    assert booking["nights"] == 3
    assert booking["expiresAt"] == "2027-01-11T12:15:00+00:00"
    assert booking["price"]["nightlySubtotal"] == {"amount": "300.00", "currency": "EUR"}
    # 14% of 330.00 is 46.20; no tax by default.
    assert booking["price"]["serviceFee"]["amount"] == "46.20"
    assert booking["price"]["total"]["amount"] == "376.20"
    assert booking["payment"] is None

    payment = await pay(client, place, booking["id"])
    assert payment["status"] == "SUCCEEDED"
    assert payment["amount"]["amount"] == "376.20"
    after = await read(client, booking["id"], place.as_guest)
    assert after is not None
    assert after["status"] == "CONFIRMED" and after["expiresAt"] is None


async def test_taken_nights_conflict(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    await booked(client, place, 10, 13)
    assert error_code(await book(client, place, 12, 14)) == "CONFLICT"
