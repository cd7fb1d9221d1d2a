"""platformMetrics: the figures of a few hand-made days, counted by hand, for admins only."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import update

from db.database import Database
from db.models import Booking, Listing, Payment, User
from tests.accounts_helpers import bearer, error_code, register, unique_email
from tests.factories import make_booking, make_listing, make_user
from tests.helpers import committed, gql

PLATFORM_METRICS = """
query Figures($from: Date!, $to: Date!) {
  platformMetrics(from: $from, to: $to) {
    from to activeListings paymentFailureRate refundRate
    days { day bookings newUsers grossBookingValue { amount currency } }
  }
}
"""
RANGE = {"from": "2026-01-10", "to": "2026-01-12"}


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


async def signed_in(client: httpx.AsyncClient, database: Database, *, admin: bool) -> dict:
    """Bearer headers of a new account, made admin as an operator would when ``admin``; the
    account itself was made long before the range."""
    email = unique_email("admin" if admin else "guest")
    payload = await register(client, email=email)
    roles = ["GUEST", "ADMIN"] if admin else ["GUEST"]
    async with committed(database) as session:
        await session.execute(
            update(User)
            .where(User.email == email)
            .values(roles=roles, created_at=datetime(2025, 6, 1, tzinfo=UTC))
        )
    return bearer(payload["accessToken"])


async def a_few_days(database: Database) -> None:
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        guests = [await make_user(session) for _ in range(4)]
        users_made = [
            (host, datetime(2025, 12, 1, tzinfo=UTC)),
            (guests[0], at(10, 0, 0, 0)),
            (guests[1], at(10, 23, 59, 59)),
            (guests[2], at(12)),
            (guests[3], at(13, 0, 0, 0)),  # the day after the range
        ]
        euros = await make_listing(session, host=host)  # 100 EUR a night
        dollars = await make_listing(
            session, host=host, nightly_price={"amount": Decimal("80"), "currency": "USD"}
        )
        deleted = await make_listing(session, host=host)
        await make_listing(session, host=host, publish=False)  # a draft
        unlisted = await make_listing(session, host=host)
        await session.execute(
            update(Listing).where(Listing.id == unlisted.id).values(status="UNLISTED")
        )
        await session.execute(
            update(Listing).where(Listing.id == deleted.id).values(deleted_at=at(11))
        )

        guest = guests[0]

        async def booking(listing: Listing, check_in: date, nights: int, made: datetime) -> int:
            made_booking = await make_booking(
                session,
                listing=listing,
                guest=guest,
                check_in=check_in,
                check_out=check_in + timedelta(days=nights),
            )
            booked_at[made_booking.id] = made
            return made_booking.id

        booked_at: dict[int, datetime] = {}
        first = await booking(euros, date(2026, 3, 1), 2, at(10, 23, 59, 59))  # 200 EUR
        second = await booking(euros, date(2026, 3, 10), 3, at(10, 0, 0, 0))  # 300 EUR
        third = await booking(dollars, date(2026, 3, 1), 1, at(10))  # 80 USD
        fourth = await booking(euros, date(2026, 4, 1), 1, at(12))  # 100 EUR
        fifth = await booking(euros, date(2026, 5, 1), 1, at(13, 0, 0, 0))  # after
        sixth = await booking(euros, date(2026, 6, 1), 1, at(9, 23, 59, 59))  # before
        await session.execute(update(Booking).where(Booking.id == second).values(status="CANCELED"))
        for booking_id, made in booked_at.items():
            await session.execute(
                update(Booking).where(Booking.id == booking_id).values(created_at=made)
            )
        for user, made in users_made:
            await session.execute(update(User).where(User.id == user.id).values(created_at=made))

        def payment(booking_id: int, status: str, made: datetime, refunded: int = 0) -> Payment:
            return Payment(
                booking_id=booking_id,
                provider="TEST",
                status=status,
                currency="EUR",
                amount_minor=8_000,
                refunded_minor=refunded,
                created_at=made,
            )

        session.add_all(
            [
                payment(first, "FAILED", at(10)),
                payment(first, "SUCCEEDED", at(10)),
                payment(second, "FAILED", at(11)),
                payment(second, "REFUNDED", at(11), refunded=8_000),
                payment(third, "PARTIALLY_REFUNDED", at(12), refunded=4_000),
                payment(fourth, "PENDING", at(12)),  # no outcome yet: in no rate
                payment(sixth, "CANCELED", at(11)),  # released: an outcome, not a failure
                payment(fifth, "FAILED", at(13, 0, 0, 0)),  # after the range
            ]
        )


async def test_admins_read_the_figures_of_each_day(
    client: httpx.AsyncClient, database: Database
) -> None:
    headers = await signed_in(client, database, admin=True)
    await a_few_days(database)

    body = await gql(client, PLATFORM_METRICS, RANGE, headers=headers)

    assert "errors" not in body, body
    figures = body["data"]["platformMetrics"]
    assert figures["from"] == "2026-01-10" and figures["to"] == "2026-01-12"
    assert figures["days"] == [
        {
            "day": "2026-01-10",
            "bookings": 3,
            "newUsers": 2,
            "grossBookingValue": [
                {"amount": "500.00", "currency": "EUR"},
                {"amount": "80.00", "currency": "USD"},
            ],
        },
        {"day": "2026-01-11", "bookings": 0, "newUsers": 0, "grossBookingValue": []},
        {
            "day": "2026-01-12",
            "bookings": 1,
            "newUsers": 1,
            "grossBookingValue": [{"amount": "100.00", "currency": "EUR"}],
        },
    ]
    assert figures["activeListings"] == 2
    # Outcomes in the range: 2 FAILED of 6 (PENDING left out); money taken in 3, refunded in 2.
    assert figures["paymentFailureRate"] == 2 / 6
    assert figures["refundRate"] == 2 / 3


async def test_rates_are_null_without_payments(
    client: httpx.AsyncClient, database: Database
) -> None:
    headers = await signed_in(client, database, admin=True)
    body = await gql(client, PLATFORM_METRICS, RANGE, headers=headers)
    figures = body["data"]["platformMetrics"]
    assert figures["paymentFailureRate"] is None and figures["refundRate"] is None
    assert [day["bookings"] for day in figures["days"]] == [0, 0, 0]


async def test_only_admins_may_read_them(client: httpx.AsyncClient, database: Database) -> None:
    headers = await signed_in(client, database, admin=False)
    body = await gql(client, PLATFORM_METRICS, RANGE, headers=headers)
    assert error_code(body) == "FORBIDDEN"
    assert body["data"] is None

    anonymous = await gql(client, PLATFORM_METRICS, RANGE)
    assert error_code(anonymous) == "UNAUTHENTICATED"


async def test_a_range_backwards_or_over_a_year_is_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    headers = await signed_in(client, database, admin=True)
    backwards = await gql(
        client, PLATFORM_METRICS, {"from": "2026-01-12", "to": "2026-01-10"}, headers=headers
    )
    assert error_code(backwards) == "BAD_USER_INPUT"
    too_long = await gql(
        client, PLATFORM_METRICS, {"from": "2025-01-01", "to": "2026-01-02"}, headers=headers
    )
    assert error_code(too_long) == "BAD_USER_INPUT"
    a_year = await gql(
        client, PLATFORM_METRICS, {"from": "2025-01-01", "to": "2025-12-31"}, headers=headers
    )
    assert "errors" not in a_year, a_year
    assert len(a_year["data"]["platformMetrics"]["days"]) == 365
