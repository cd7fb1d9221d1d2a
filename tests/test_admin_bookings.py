"""Admins search every booking by status, guest, host, listing and dates."""

import httpx

from db.database import Database
from tests.accounts_helpers import error_code
from tests.booking_helpers import a_place, booked, day, pay
from tests.helpers import gql
from tests.receipt_helpers import an_admin

BOOKINGS = """
query($status: BookingStatus, $guest: ID, $host: ID, $listing: ID, $from: Date, $to: Date,
      $first: Int, $after: String) {
  bookings(status: $status, guestId: $guest, hostId: $host, listingId: $listing, from: $from,
           to: $to, first: $first, after: $after) {
    edges { node { id status checkIn } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""
ME = "{ me { id } }"


async def ids(client: httpx.AsyncClient, admin: dict[str, str], **filters: object) -> list[str]:
    body = await gql(client, BOOKINGS, filters, headers=admin)
    assert "errors" not in body, body
    return [edge["node"]["id"] for edge in body["data"]["bookings"]["edges"]]


async def test_admins_find_bookings_by_status_people_listing_and_dates(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    lisbon = await a_place(client)
    porto = await a_place(client)
    early = await booked(client, lisbon, 5, 7)
    await pay(client, lisbon, early["id"])
    late = await booked(client, lisbon, 20, 22)  # left unpaid: PENDING
    other = await booked(client, porto, 10, 12)
    await pay(client, porto, other["id"])
    host = (await gql(client, ME, headers=lisbon.as_host))["data"]["me"]["id"]
    guest = (await gql(client, ME, headers=porto.as_guest))["data"]["me"]["id"]

    assert await ids(client, admin) == [late["id"], other["id"], early["id"]]
    assert await ids(client, admin, status="PENDING") == [late["id"]]
    assert await ids(client, admin, host=host) == [late["id"], early["id"]]
    assert await ids(client, admin, guest=guest) == [other["id"]]
    assert await ids(client, admin, listing=porto.listing_id) == [other["id"]]
    assert await ids(client, admin, **{"from": day(6), "to": day(11)}) == [
        other["id"],
        early["id"],
    ]
    page = await gql(client, BOOKINGS, {"first": 2}, headers=admin)
    assert page["data"]["bookings"]["totalCount"] == 3
    after = page["data"]["bookings"]["pageInfo"]["endCursor"]
    assert await ids(client, admin, first=2, after=after) == [early["id"]]
    wrong_kind = await gql(client, BOOKINGS, {"guest": lisbon.listing_id}, headers=admin)
    assert error_code(wrong_kind) == "BAD_USER_INPUT"
    assert error_code(await gql(client, BOOKINGS, headers=lisbon.as_host)) == "FORBIDDEN"


PAYMENTS = """
query($status: PaymentStatus, $provider: PaymentProvider, $booking: ID, $guest: ID) {
  payments(status: $status, provider: $provider, bookingId: $booking, guestId: $guest) {
    edges { node { id status } }
    totalCount
  }
}
"""


async def payment_ids(
    client: httpx.AsyncClient, admin: dict[str, str], **filters: object
) -> list[str]:
    body = await gql(client, PAYMENTS, filters, headers=admin)
    assert "errors" not in body, body
    return [edge["node"]["id"] for edge in body["data"]["payments"]["edges"]]


async def test_admins_find_payments_by_status_provider_booking_and_guest(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    lisbon, porto = await a_place(client), await a_place(client)
    first_booking = await booked(client, lisbon, 5, 7)
    first = await pay(client, lisbon, first_booking["id"])
    second = await pay(client, porto, (await booked(client, porto, 10, 12))["id"])
    guest = (await gql(client, ME, headers=porto.as_guest))["data"]["me"]["id"]

    assert await payment_ids(client, admin) == [second["id"], first["id"]]
    assert await payment_ids(client, admin, guest=guest) == [second["id"]]
    assert await payment_ids(client, admin, booking=first_booking["id"]) == [first["id"]]
    assert await payment_ids(client, admin, provider="STRIPE") == []
    assert await payment_ids(client, admin, status="FAILED") == []
    assert len(await payment_ids(client, admin, provider="TEST", status="SUCCEEDED")) == 2
    assert error_code(await gql(client, PAYMENTS, headers=porto.as_guest)) == "FORBIDDEN"
