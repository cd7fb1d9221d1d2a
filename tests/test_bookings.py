"""Bookings over HTTP: the rules of quoting, booking, paying, answering, changing, cancelling
and reading."""

from dataclasses import replace
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from app.wiring import build_payment_gateways
from db.database import Database
from db.models import Payment, PaymentOperation, User
from services.checkout import settle
from services.payments import request_refund
from services.pricing import FeePolicy
from tests.accounts_helpers import bearer, error_code, register, unique_email
from tests.booking_helpers import (
    ACCEPT,
    CANCEL,
    CONFIRM_PAYMENT,
    DECLINE,
    MODIFY,
    START_PAYMENT,
    Place,
    a_place,
    book,
    booked,
    day,
    pay,
    read,
)
from tests.helpers import FakeClock, StatementCounter, committed, gql, make_settings
from tests.listing_helpers import BLOCK, UPDATE

QUOTE = """
query($id: ID!, $in: Date!, $out: Date!, $guests: Int!) {
  quote(listingId: $id, checkIn: $in, checkOut: $out, guests: $guests) {
    nights nightlySubtotal { amount } cleaningFee { amount } serviceFee { amount }
    taxes { amount } total { amount currency formatted }
  }
}
"""
PRICES = """
mutation($id: ID!, $f: Date!, $t: Date!, $amount: Decimal) {
  setNightPrices(listingId: $id, from: $f, to: $t, amount: $amount)
}
"""


def fields_of(body: dict) -> dict:
    assert error_code(body) == "BAD_USER_INPUT", body
    return body["errors"][0]["extensions"]["fields"]


async def an_admin(client: httpx.AsyncClient, database: Database) -> dict[str, str]:
    email = unique_email("admin")
    token = (await register(client, email=email))["accessToken"]
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == email).values(roles=["GUEST", "ADMIN"])
        )
    return bearer(token)


async def quote(client: httpx.AsyncClient, place: Place, check_in: int, check_out: int) -> dict:
    variables = {"id": place.listing_id, "in": day(check_in), "out": day(check_out), "guests": 2}
    return await gql(client, QUOTE, variables)


# Quote.


async def test_a_quote_prices_each_night_then_fees_and_taxes_rounded_half_up(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, nightlyPrice={"amount": "100.25", "currency": "EUR"})
    variables = {"id": place.listing_id, "f": day(11), "t": day(12), "amount": "150"}
    assert "errors" not in await gql(client, PRICES, variables, headers=place.as_host)
    services = app.state.services
    fees = FeePolicy(Decimal(14), Decimal(0), {"PT": Decimal("6.5")})
    app.state.services = replace(services, booking_rules=replace(services.booking_rules, fees=fees))
    try:
        body = await quote(client, place, 10, 12)
    finally:
        app.state.services = services
    price = body["data"]["quote"]
    # 100.25 + 150 (the override) + 30 cleaning = 280.25; 14% = 39.235 -> 39.24;
    # Portugal's 6.5% = 18.21625 -> 18.22.
    assert price == {
        "nights": 2,
        "nightlySubtotal": {"amount": "250.25"},
        "cleaningFee": {"amount": "30.00"},
        "serviceFee": {"amount": "39.24"},
        "taxes": {"amount": "18.22"},
        "total": {"amount": "337.71", "currency": "EUR", "formatted": "€337.71"},
    }


async def test_a_booking_is_priced_as_its_quote(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, nightlyPrice={"amount": "99.99", "currency": "EUR"})
    quoted = (await quote(client, place, 10, 14))["data"]["quote"]
    price = (await booked(client, place, 10, 14))["price"]
    assert {part: price[part]["amount"] for part in ("nightlySubtotal", "total")} == {
        part: quoted[part]["amount"] for part in ("nightlySubtotal", "total")
    }
    assert price["serviceFee"]["amount"] == quoted["serviceFee"]["amount"] == "60.19"


async def test_a_refund_asked_twice_under_one_key_is_paid_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    gateways = app.state.services.payment_gateways
    for _ in range(2):
        async with committed(database) as session:
            payment = await session.scalar(select(Payment))
            call = await request_refund(
                session, payment, amount=5_000, key="goodwill-1", now=clock.now
            )
        await settle(database.transaction, gateways, call, clock=clock)
    async with database.read_session() as session:
        payment = await session.scalar(select(Payment))
        refunds = await session.scalar(
            select(func.count()).where(PaymentOperation.kind == "REFUND")
        )
    assert (payment.refunded_minor, payment.status, refunds) == (5_000, "PARTIALLY_REFUNDED", 1)


async def test_a_quote_is_refused_for_taken_nights_and_bad_stays(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    await booked(client, place, 10, 13)
    assert error_code(await quote(client, place, 12, 14)) == "CONFLICT"
    assert set(fields_of(await quote(client, place, 14, 14))) == {"checkOut"}
    assert "errors" not in await quote(client, place, 13, 14)


# Booking rules.


@pytest.mark.parametrize(
    ("check_in", "check_out", "guests", "field"),
    [
        (-1, 2, 2, "checkIn"),  # yesterday
        (366, 368, 2, "checkIn"),  # more than 365 days ahead
        (5, 5, 2, "checkOut"),  # no nights
        (5, 4, 2, "checkOut"),
        (5, 6, 2, "checkOut"),  # under the listing's minimum of 2 nights
        (5, 13, 2, "checkOut"),  # over its maximum of 7
        (5, 7, 0, "guests"),
        (5, 7, 5, "guests"),  # over its 4 guests
    ],
)
async def test_a_stay_outside_the_rules_is_refused_field_by_field(
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    check_in: int,
    check_out: int,
    guests: int,
    field: str,
) -> None:
    place = await a_place(client, minNights=2, maxNights=7)
    assert set(fields_of(await book(client, place, check_in, check_out, guests))) == {field}


async def test_stays_may_start_today_and_up_to_365_days_ahead(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    assert (await booked(client, place, 0, 1))["status"] == "PENDING"
    assert (await booked(client, place, 365, 366))["status"] == "PENDING"


async def test_today_is_today_where_the_listing_is(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    # 05:00 UTC on 11 January is still the evening of 10 January in Honolulu.
    clock.now = clock.now.replace(hour=5)
    place = await a_place(
        client, latitude=21.3069, longitude=-157.8583,
        address={"city": "Honolulu", "country": "US"},
        nightlyPrice={"amount": "180", "currency": "USD"}, cleaningFee=None,
    )  # fmt: skip
    assert (await booked(client, place, -1, 1))["checkIn"] == day(-1)
    assert set(fields_of(await book(client, place, -2, 1))) == {"checkIn"}


async def test_only_published_listings_of_others_can_be_booked(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    own = await gql(
        client,
        "mutation($input: CreateBookingInput!) { createBooking(input: $input) { id } }",
        {
            "input": {
                "listingId": place.listing_id,
                "checkIn": day(5),
                "checkOut": day(7),
                "guests": 1,
            }
        },
        headers=place.as_host,
    )
    assert error_code(own) == "FORBIDDEN"
    unlisted = {"id": place.listing_id, "input": {"publish": False}}
    assert "errors" not in await gql(client, UPDATE, unlisted, headers=place.as_host)
    assert error_code(await book(client, place, 5, 7)) == "NOT_FOUND"


async def test_blocked_nights_cannot_be_booked(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    variables = {"id": place.listing_id, "f": day(6), "t": day(7)}
    assert "errors" not in await gql(client, BLOCK, variables, headers=place.as_host)
    assert error_code(await book(client, place, 5, 7)) == "CONFLICT"
    assert "errors" not in await book(client, place, 7, 9)


async def test_signing_in_is_required_to_book(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    body = await book(client, replace(place, guest="not-a-token"), 5, 7)
    assert error_code(body) == "UNAUTHENTICATED"


async def test_a_guest_holds_at_most_five_unpaid_bookings(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    for start in range(5):
        await booked(client, place, 10 * start + 1, 10 * start + 2)
    assert error_code(await book(client, place, 60, 61)) == "CONFLICT"
    clock.advance(minutes=16)  # the holds lapsed, whether or not a worker ran yet
    assert "errors" not in await book(client, place, 60, 61)


async def test_a_message_to_the_host_is_bounded(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    stay = {"listingId": place.listing_id, "checkIn": day(5), "checkOut": day(7), "guests": 1}
    mutation = "mutation($input: CreateBookingInput!) { createBooking(input: $input) { message } }"
    too_long = await gql(
        client, mutation, {"input": {**stay, "message": "x" * 2001}}, headers=place.as_guest
    )
    assert set(fields_of(too_long)) == {"message"}
    body = await gql(
        client, mutation, {"input": {**stay, "message": " Hi! "}}, headers=place.as_guest
    )
    assert body["data"]["createBooking"]["message"] == "Hi!"


async def test_a_booking_keeps_its_price_and_policy_when_the_listing_changes(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, cancellationPolicy="FLEXIBLE")
    booking = await booked(client, place, 10, 12)
    change = {
        "id": place.listing_id,
        "input": {
            "nightlyPrice": {"amount": "500", "currency": "EUR"},
            "cancellationPolicy": "STRICT",
        },
    }
    assert "errors" not in await gql(client, UPDATE, change, headers=place.as_host)
    kept = await read(client, booking["id"], place.as_guest)
    assert kept["price"] == booking["price"]
    assert kept["cancellationPolicy"] == "FLEXIBLE"


# Paying.


async def test_paying_needs_an_offered_provider(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    body = await gql(
        client,
        "mutation($id: ID!) { startPayment(bookingId: $id) { payment { id } } }",
        {"id": booking["id"]},
        headers=place.as_guest,
    )
    assert fields_of(body) == {"provider": "STRIPE payments are not available"}


def test_production_never_offers_the_test_provider(database_url: str) -> None:
    settings = make_settings(database_url, env="production")
    assert "TEST" not in build_payment_gateways(settings).by_provider
    assert "TEST" in build_payment_gateways(make_settings(database_url)).by_provider


async def test_starting_and_confirming_a_payment_twice_charges_once(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    variables = {"id": booking["id"], "provider": "TEST"}
    first = await gql(client, START_PAYMENT, variables, headers=place.as_guest)
    again = await gql(client, START_PAYMENT, variables, headers=place.as_guest)
    payment = first["data"]["startPayment"]["payment"]
    assert again["data"]["startPayment"]["payment"]["id"] == payment["id"]
    assert first["data"]["startPayment"]["clientSecret"]
    for _ in range(2):
        confirmed = await gql(
            client, CONFIRM_PAYMENT, {"id": payment["id"], "succeed": True}, headers=place.as_guest
        )
        assert confirmed["data"]["confirmTestPayment"]["status"] == "SUCCEEDED"
    async with database.read_session() as session:
        kinds = (
            await session.scalars(select(PaymentOperation.kind).order_by(PaymentOperation.id))
        ).all()
    assert kinds == ["AUTHORIZE", "CAPTURE"]
    paid_again = await gql(client, START_PAYMENT, variables, headers=place.as_guest)
    assert error_code(paid_again) == "CONFLICT"


async def test_a_declined_card_leaves_the_booking_pending_for_another_try(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await gql(
        client, START_PAYMENT, {"id": booking["id"], "provider": "TEST"}, headers=place.as_guest
    )
    payment_id = started["data"]["startPayment"]["payment"]["id"]
    failed = await gql(
        client, CONFIRM_PAYMENT, {"id": payment_id, "succeed": False}, headers=place.as_guest
    )
    assert failed["data"]["confirmTestPayment"]["status"] == "FAILED"
    assert (await read(client, booking["id"], place.as_guest))["status"] == "PENDING"
    retried = await pay(client, place, booking["id"])
    assert retried["id"] != payment_id and retried["status"] == "SUCCEEDED"


async def test_only_the_guest_pays(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    variables = {"id": booking["id"], "provider": "TEST"}
    assert error_code(await gql(client, START_PAYMENT, variables, headers=place.as_host)) == (
        "FORBIDDEN"
    )
    stranger = bearer((await register(client))["accessToken"])
    assert error_code(await gql(client, START_PAYMENT, variables, headers=stranger)) == "NOT_FOUND"
    started = await gql(client, START_PAYMENT, variables, headers=place.as_guest)
    payment_id = started["data"]["startPayment"]["payment"]["id"]
    confirm = {"id": payment_id, "succeed": True}
    assert error_code(await gql(client, CONFIRM_PAYMENT, confirm, headers=stranger)) == "NOT_FOUND"


# Request to book.


async def test_a_host_accepts_a_paid_request_and_the_payment_is_captured(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    unpaid = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
    assert error_code(unpaid) == "CONFLICT"
    assert (await pay(client, place, booking["id"]))["status"] == "AUTHORIZED"
    by_guest = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_guest)
    assert error_code(by_guest) == "FORBIDDEN"

    accepted = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
    confirmed = accepted["data"]["acceptBooking"]
    assert confirmed["status"] == "CONFIRMED"
    assert confirmed["payment"]["status"] == "SUCCEEDED"
    again = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
    assert error_code(again) == "CONFLICT"


async def test_a_host_declines_a_request_and_the_hold_on_the_card_is_released(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    body = await gql(
        client,
        DECLINE,
        {"id": booking["id"], "reason": "Closed for repairs"},
        headers=place.as_host,
    )
    declined = body["data"]["declineBooking"]
    assert (declined["status"], declined["canceledBy"]) == ("CANCELED", "HOST")
    assert declined["cancelReason"] == "Closed for repairs"
    assert declined["payment"]["status"] == "CANCELED"
    assert declined["refundAmount"]["amount"] == "0.00"  # nothing had been taken
    assert "errors" not in await book(client, place, 10, 12)  # the nights are free


# Cancelling.


async def test_a_guest_cancelling_early_gets_everything_back(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, cancellationPolicy="MODERATE")
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    preview = (await read(client, booking["id"], place.as_guest))["refundPreview"]
    assert preview == {"amount": "262.20"} and booking["price"]["total"]["amount"] == "262.20"
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    canceled = body["data"]["cancelBooking"]
    assert canceled["status"] == "CANCELED" and canceled["canceledBy"] == "GUEST"
    assert canceled["refundAmount"] == {"amount": "262.20"}
    assert canceled["payment"]["status"] == "REFUNDED"
    assert canceled["payment"]["refundedAmount"] == {"amount": "262.20"}
    assert canceled["refundPreview"] is None
    again = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    assert error_code(again) == "CONFLICT"


async def test_a_guest_cancelling_late_gets_what_the_kept_policy_gives(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, cancellationPolicy="MODERATE")
    booking = await booked(client, place, 3, 5)  # two nights at 100: 200 of 262.20 paid
    await pay(client, place, booking["id"])
    assert "errors" not in await gql(
        client,
        UPDATE,
        {"id": place.listing_id, "input": {"cancellationPolicy": "FLEXIBLE"}},
        headers=place.as_host,
    )
    # Less than 5 days before check-in: MODERATE gives half the nights, 100.00.
    preview = (await read(client, booking["id"], place.as_guest))["refundPreview"]
    assert preview == {"amount": "100.00"}
    host_preview = (await read(client, booking["id"], place.as_host))["refundPreview"]
    assert host_preview == {"amount": "262.20"}  # the host cancelling refunds everything
    body = await gql(
        client, CANCEL, {"id": booking["id"], "reason": "Plans changed"}, headers=place.as_guest
    )
    canceled = body["data"]["cancelBooking"]
    assert canceled["refundAmount"] == {"amount": "100.00"}
    assert canceled["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert canceled["cancelReason"] == "Plans changed"


async def test_a_host_cancelling_refunds_the_guest_in_full(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, cancellationPolicy="STRICT")
    booking = await booked(client, place, 2, 4)
    await pay(client, place, booking["id"])
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_host)
    canceled = body["data"]["cancelBooking"]
    assert canceled["canceledBy"] == "HOST"
    assert canceled["refundAmount"] == {"amount": canceled["price"]["total"]["amount"]}
    assert canceled["payment"]["status"] == "REFUNDED"


async def test_a_stranger_can_neither_see_nor_cancel_a_booking(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    stranger = bearer((await register(client))["accessToken"])
    assert await read(client, booking["id"], stranger) is None
    assert await read(client, booking["id"], {}) is None
    assert error_code(await gql(client, CANCEL, {"id": booking["id"]}, headers=stranger)) == (
        "NOT_FOUND"
    )
    assert (await read(client, booking["id"], place.as_host))["id"] == booking["id"]
    admin = await an_admin(client, database)
    assert (await read(client, booking["id"], admin))["guest"]["id"] == booking["guest"]["id"]


# Changing dates.


async def modify(
    client: httpx.AsyncClient, place: Place, booking_id: str, check_in: int, check_out: int
) -> dict:
    variables = {"id": booking_id, "in": day(check_in), "out": day(check_out), "guests": 2}
    return await gql(client, MODIFY, variables, headers=place.as_guest)


async def test_a_longer_stay_is_charged_the_difference_and_a_shorter_one_refunded(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)  # 262.20
    await pay(client, place, booking["id"])

    longer = (await modify(client, place, booking["id"], 10, 13))["data"]["modifyBooking"]
    assert longer["price"]["total"]["amount"] == "376.20"
    assert longer["payment"]["amount"] == {"amount": "376.20"}  # 114.00 more was charged
    assert longer["status"] == "CONFIRMED"

    shorter = (await modify(client, place, booking["id"], 11, 12))["data"]["modifyBooking"]
    assert shorter["price"]["total"]["amount"] == "148.20"
    assert shorter["payment"]["refundedAmount"] == {"amount": "228.00"}
    assert shorter["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert (shorter["checkIn"], shorter["checkOut"], shorter["nights"]) == (day(11), day(12), 1)
    # The nights let go are free again.
    assert "errors" not in await book(client, place, 12, 13)


async def test_changing_back_and_forth_charges_and_refunds_each_time(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)  # 262.20
    await pay(client, place, booking["id"])
    for _ in range(2):
        longer = (await modify(client, place, booking["id"], 10, 13))["data"]["modifyBooking"]
        shorter = (await modify(client, place, booking["id"], 10, 12))["data"]["modifyBooking"]
    # Charged 114.00 twice, refunded 114.00 twice.
    assert longer["payment"]["amount"] == {"amount": "490.20"}
    assert shorter["payment"]["amount"] == {"amount": "490.20"}
    assert shorter["payment"]["refundedAmount"] == {"amount": "228.00"}
    async with database.read_session() as session:
        kinds = (
            await session.scalars(select(PaymentOperation.kind).order_by(PaymentOperation.id))
        ).all()
    assert kinds == ["AUTHORIZE", "CAPTURE", "CHARGE", "REFUND", "CHARGE", "REFUND"]


async def test_changing_a_request_the_host_has_not_answered_asks_for_a_new_payment(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)  # 262.20
    await pay(client, place, booking["id"])
    clock.advance(hours=1)
    changed = (await modify(client, place, booking["id"], 10, 13))["data"]["modifyBooking"]
    assert changed["status"] == "PENDING"
    assert changed["payment"]["status"] == "CANCELED"  # the old hold on the card let go
    assert changed["expiresAt"] == "2027-01-11T13:15:00+00:00"  # 15 minutes to pay again
    assert (await pay(client, place, booking["id"]))["amount"] == {"amount": "376.20"}
    accepted = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
    assert accepted["data"]["acceptBooking"]["payment"]["status"] == "SUCCEEDED"
    assert accepted["data"]["acceptBooking"]["price"]["total"]["amount"] == "376.20"


async def test_changing_a_lapsed_request_does_not_open_a_hold_past_the_cap(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, instantBook=False)
    request = await booked(client, place, 10, 12)
    await pay(client, place, request["id"])
    clock.advance(hours=24, minutes=1)  # the host did not answer; no worker has run yet
    for start in range(5):  # the lapsed request no longer counts: the guest holds 5 anew
        await booked(client, place, 20 + 2 * start, 21 + 2 * start)
    # Changing the request used to give it a fresh payment window: a sixth live hold.
    assert error_code(await modify(client, place, request["id"], 10, 13)) == "CONFLICT"
    unchanged = await read(client, request["id"], place.as_guest)
    assert (unchanged["checkOut"], unchanged["expiresAt"]) == (day(12), "2027-01-12T12:00:00+00:00")
    assert unchanged["payment"]["status"] == "AUTHORIZED"


async def test_a_change_into_taken_nights_conflicts_and_changes_nothing(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    mine = await booked(client, place, 10, 12)
    other = await a_place(client)  # another guest books the nights after mine
    taken = await book(client, replace(place, guest=other.guest), 12, 14)
    assert "errors" not in taken
    assert error_code(await modify(client, place, mine["id"], 11, 13)) == "CONFLICT"
    assert (await read(client, mine["id"], place.as_guest))["checkOut"] == day(12)
    # Overlapping its own nights is fine.
    assert "errors" not in await modify(client, place, mine["id"], 9, 11)


async def test_only_the_guest_changes_an_active_booking(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    variables = {"id": booking["id"], "in": day(10), "out": day(13), "guests": 2}
    assert error_code(await gql(client, MODIFY, variables, headers=place.as_host)) == "FORBIDDEN"
    await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    assert error_code(await modify(client, place, booking["id"], 10, 13)) == "CONFLICT"


# Lists.

TRIPS = """
query($status: BookingStatus, $first: Int, $after: String) {
  myTrips(status: $status, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id checkIn status listing { title host { firstName } } guest { firstName }
                   payment { status } } }
  }
}
"""
RESERVATIONS = """
query($status: BookingStatus, $listingId: ID, $from: Date, $to: Date, $first: Int, $after: String) {
  hostReservations(status: $status, listingId: $listingId, from: $from, to: $to, first: $first,
                   after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id checkIn } }
  }
}
"""


async def test_trips_and_reservations_page_through_every_booking_once(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    ids = [(await booked(client, place, start, start + 1))["id"] for start in (20, 5, 10, 15)]
    await pay(client, place, ids[1])

    seen, after = [], None
    while True:
        body = await gql(client, TRIPS, {"first": 3, "after": after}, headers=place.as_guest)
        trips = body["data"]["myTrips"]
        assert trips["totalCount"] == 4
        seen += [edge["node"]["checkIn"] for edge in trips["edges"]]
        if not trips["pageInfo"]["hasNextPage"]:
            break
        after = trips["pageInfo"]["endCursor"]
    assert seen == [day(20), day(15), day(10), day(5)]  # latest check-in first

    confirmed = await gql(client, TRIPS, {"status": "CONFIRMED"}, headers=place.as_guest)
    assert [e["node"]["id"] for e in confirmed["data"]["myTrips"]["edges"]] == [ids[1]]

    window = {"from": day(10), "to": day(16)}
    body = await gql(client, RESERVATIONS, window, headers=place.as_host)
    reservations = body["data"]["hostReservations"]
    assert [e["node"]["checkIn"] for e in reservations["edges"]] == [day(10), day(15)]
    assert reservations["totalCount"] == 2
    other = await a_place(client)
    elsewhere = {"listingId": other.listing_id}
    body = await gql(client, RESERVATIONS, elsewhere, headers=place.as_host)
    assert body["data"]["hostReservations"]["edges"] == []  # not this host's listing
    assert error_code(await gql(client, TRIPS, {"first": 101}, headers=place.as_guest)) == (
        "BAD_USER_INPUT"
    )
    assert error_code(await gql(client, TRIPS, {"after": "nonsense"}, headers=place.as_guest)) == (
        "BAD_USER_INPUT"
    )


async def test_a_page_of_trips_costs_the_same_statements_whatever_its_size(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    guest = None
    for _ in range(3):  # bookings on three listings of three hosts
        place = await a_place(client)
        guest = guest or place.guest
        place = replace(place, guest=guest)
        for start in range(1, 8, 2):
            booking = await booked(client, place, start, start + 1)
            await pay(client, place, booking["id"])
            await gql(
                client, CANCEL, {"id": booking["id"]}, headers=place.as_guest
            ) if start == 1 else None
    assert guest is not None
    counts = {}
    for size in (2, 12):
        with StatementCounter(database) as counter:
            body = await gql(client, TRIPS, {"first": size}, headers=bearer(guest))
        assert len(body["data"]["myTrips"]["edges"]) == size
        counts[size] = counter.count
    # The viewer, the page, its count; then one each for the listings, the users (hosts and
    # guests together) and the payments.
    assert counts[2] == counts[12] == 6, counts


async def test_payments_resolve_as_nodes_for_those_who_see_the_booking(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    query = "query($id: ID!) { node(id: $id) { ... on Payment { status } } }"
    assert (await gql(client, query, {"id": payment["id"]}, headers=place.as_host))["data"][
        "node"
    ] == {"status": "SUCCEEDED"}
    stranger = bearer((await register(client))["accessToken"])
    assert (await gql(client, query, {"id": payment["id"]}, headers=stranger))["data"][
        "node"
    ] is None
