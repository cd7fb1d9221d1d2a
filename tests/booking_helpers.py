"""Shared steps of the booking tests: a listing to book, a guest to book it, and paying."""

from dataclasses import dataclass
from datetime import timedelta

import httpx

from tests.accounts_helpers import bearer, register
from tests.helpers import START, gql
from tests.listing_helpers import create, host_token

TODAY = START.date()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


BOOKING_FIELDS = """
  id checkIn checkOut nights guests status message cancellationPolicy expiresAt
  canceledAt canceledBy cancelReason createdAt
  price { nights nightlySubtotal { amount currency } cleaningFee { amount } serviceFee { amount }
          taxes { amount } total { amount currency } }
  payment { id provider status amount { amount } refundedAmount { amount } }
  refundAmount { amount } refundPreview { amount }
  listing { id title } guest { id firstName }
"""
CREATE_BOOKING = f"""
mutation($input: CreateBookingInput!) {{ createBooking(input: $input) {{ {BOOKING_FIELDS} }} }}
"""
BOOKING = f"query($id: ID!) {{ booking(id: $id) {{ {BOOKING_FIELDS} }} }}"
START_PAYMENT = """
mutation($id: ID!, $provider: PaymentProvider!) {
  startPayment(bookingId: $id, provider: $provider) {
    clientSecret redirectUrl payment { id provider status amount { amount currency } }
  }
}
"""
CONFIRM_PAYMENT = """
mutation($id: ID!, $succeed: Boolean!) {
  confirmTestPayment(paymentId: $id, succeed: $succeed) {
    id status amount { amount } refundedAmount { amount }
  }
}
"""
ACCEPT = f"mutation($id: ID!) {{ acceptBooking(id: $id) {{ {BOOKING_FIELDS} }} }}"
DECLINE = f"""
mutation($id: ID!, $reason: String) {{
  declineBooking(id: $id, reason: $reason) {{ {BOOKING_FIELDS} }}
}}
"""
CANCEL = f"""
mutation($id: ID!, $reason: String) {{
  cancelBooking(id: $id, reason: $reason) {{ {BOOKING_FIELDS} }}
}}
"""
MODIFY = f"""
mutation($id: ID!, $in: Date!, $out: Date!, $guests: Int!) {{
  modifyBooking(id: $id, checkIn: $in, checkOut: $out, guests: $guests) {{ {BOOKING_FIELDS} }}
}}
"""


@dataclass
class Place:
    """A published listing, its host, and a guest who can book it."""

    listing_id: str
    host: str
    guest: str

    @property
    def as_host(self) -> dict[str, str]:
        return bearer(self.host)

    @property
    def as_guest(self) -> dict[str, str]:
        return bearer(self.guest)


async def a_place(client: httpx.AsyncClient, **listing: object) -> Place:
    """Lisbon, 100 EUR a night, 30 EUR cleaning, up to 4 guests, instant book, MODERATE."""
    values: dict[str, object] = {
        "nightlyPrice": {"amount": "100", "currency": "EUR"},
        "cleaningFee": {"amount": "30", "currency": "EUR"},
        "maxGuests": 4,
        "minNights": 1,
        "maxNights": 28,
        "instantBook": True,
        "cancellationPolicy": "MODERATE",
    }
    values.update(listing)
    host = await host_token(client)
    created = await create(client, host, **values)
    guest = (await register(client))["accessToken"]
    return Place(created["id"], host, guest)


async def book(
    client: httpx.AsyncClient, place: Place, check_in: int, check_out: int, guests: int = 2
) -> dict:
    """Books [today + check_in, today + check_out) as the place's guest: the response body."""
    return await gql(
        client,
        CREATE_BOOKING,
        {
            "input": {
                "listingId": place.listing_id,
                "checkIn": day(check_in),
                "checkOut": day(check_out),
                "guests": guests,
            }
        },
        headers=place.as_guest,
    )


async def booked(client: httpx.AsyncClient, place: Place, check_in: int, check_out: int) -> dict:
    body = await book(client, place, check_in, check_out)
    assert "errors" not in body, body
    return body["data"]["createBooking"]


async def pay(client: httpx.AsyncClient, place: Place, booking_id: str) -> dict:
    """Pays with the TEST provider; answers the payment as confirmed."""
    started = await gql(
        client, START_PAYMENT, {"id": booking_id, "provider": "TEST"}, headers=place.as_guest
    )
    assert "errors" not in started, started
    payment_id = started["data"]["startPayment"]["payment"]["id"]
    confirmed = await gql(
        client, CONFIRM_PAYMENT, {"id": payment_id, "succeed": True}, headers=place.as_guest
    )
    assert "errors" not in confirmed, confirmed
    return confirmed["data"]["confirmTestPayment"]


async def read(client: httpx.AsyncClient, booking_id: str, headers: dict[str, str]) -> dict | None:
    body = await gql(client, BOOKING, {"id": booking_id}, headers=headers)
    assert "errors" not in body, body
    return body["data"]["booking"]
