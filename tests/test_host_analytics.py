"""hostAnalytics through HTTP, against figures worked out by hand.

The stays are written straight into the database (their statuses, payments, refunds and
payouts as the booking and payout flows leave them), so every figure is known to the cent.
The listing is in Lisbon (UTC+0 in winter, UTC+1 from 28 March 2027), priced in euros; the
host fee is Roost's default 3 %.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import select
from strawberry import relay

from db.database import Database
from db.models import BlockedNight, Booking, ExchangeRate, Payment, Payout, Review
from services.exchange_rates import convert, rate_between
from tests.accounts_helpers import bearer, error_code, register
from tests.helpers import StatementCounter, committed, gql
from tests.listing_helpers import create, host_token

MONEY = "currency nightsBooked averageDailyRate { amount } grossRevenue { amount } " \
    "fees { amount } refunds { amount } netPayouts { amount }"  # fmt: skip
PERIOD = f"""
  from to nightsAvailable nightsBooked occupancyRate
  cancellations {{ total byGuest byHost byOthers }}
  byCurrency {{ {MONEY} }} inPreferredCurrency {{ {MONEY} }}
"""
ANALYTICS = f"""
query($from: Date!, $to: Date!, $listing: ID) {{
  hostAnalytics(from: $from, to: $to, listingId: $listing) {{
    from to listings totals {{ {PERIOD} }} months {{ {PERIOD} }}
    ratings {{ reviews overall cleanliness accuracy communication location checkIn value }}
  }}
}}
"""


def database_id(global_id: str) -> int:
    return int(relay.GlobalID.from_id(global_id).node_id)


@dataclass
class Host:
    token: str
    id: int
    listing_id: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


async def a_host(client: httpx.AsyncClient, **listing: object) -> Host:
    """A host and a published Lisbon listing of theirs, in euros."""
    token = await host_token(client)
    me = await gql(client, "{ me { id } }", headers=bearer(token))
    created = await create(client, token, **listing)
    return Host(token, database_id(me["data"]["me"]["id"]), created["id"])


async def a_guest(client: httpx.AsyncClient) -> int:
    return database_id((await register(client))["user"]["id"])


def stay(
    listing_id: int,
    guest_id: int,
    check_in: date,
    prices: list[int],
    *,
    status: str,
    cleaning: int = 3000,
    **extra: object,
) -> Booking:
    """A booking as the booking flow leaves it: the guest's 14 % service fee on nights plus
    cleaning, no taxes."""
    base = sum(prices) + cleaning
    service = base * 14 // 100
    check_out = check_in + timedelta(days=len(prices))
    return Booking(
        listing_id=listing_id,
        guest_id=guest_id,
        check_in=check_in,
        check_out=check_out,
        guests=2,
        status=status,
        currency="EUR",
        night_prices_minor=prices,
        cleaning_fee_minor=cleaning,
        service_fee_minor=service,
        taxes_minor=0,
        total_minor=base + service,
        cancellation_policy="MODERATE",
        instant_book=True,
        starts_at=datetime.combine(check_in, datetime.min.time(), UTC) + timedelta(hours=15),
        ends_at=datetime.combine(check_out, datetime.min.time(), UTC) + timedelta(hours=11),
        **extra,
    )


def paid(booking: Booking, *, refunded: int = 0, status: str = "SUCCEEDED") -> Payment:
    return Payment(
        booking_id=booking.id,
        provider="TEST",
        status=status,
        currency="EUR",
        amount_minor=booking.total_minor,
        refunded_minor=refunded,
    )


def review(booking: Booking, host_id: int, published: datetime, **ratings: int) -> Review:
    return Review(
        booking_id=booking.id,
        listing_id=booking.listing_id,
        author_id=booking.guest_id,
        subject_id=host_id,
        kind="GUEST_REVIEW",
        comment="Lovely.",
        window_closes_at=published,
        published_at=published,
        created_at=published,
        updated_at=published,
        **ratings,
    )


async def march_of_a_host(client: httpx.AsyncClient, database: Database) -> Host:
    """March 2027 of one listing, at 100 EUR a night and 30 EUR cleaning:

    - A, COMPLETED, 2 to 5 March (100, 100, 120 EUR): total 399.00, 50.00 refunded after the
      stay, no payout yet. Gross 350.00; fee 10.50; refunds 50.00; net 289.50.
    - B, CANCELED by the guest on 8 March, was 10 to 12 March (2 x 100 EUR): total 262.20,
      162.20 refunded, 100.00 kept. Gross 230.00; fee 6.90; refunds 162.20; net 60.90.
    - C, COMPLETED, 30 March to 2 April (3 x 100 EUR), paid out: 320.10 to the host, fee
      9.90. Its nights weigh 130, 100, 100 (cleaning on the first): March has 230.00 gross,
      fee floor(990 x 230/330) = 6.90, net floor(32010 x 230/330) = 223.10; April the rest.
    - D, a request the host declined at 23:30 UTC on 31 March, 00:30 on 1 April in Lisbon.
    - E, COMPLETED in February, reviewed in March.
    - The host blocked 20 and 21 March.
    """
    host = await a_host(client)
    listing_id = database_id(host.listing_id)
    guest = await a_guest(client)
    async with committed(database) as session:
        a = stay(listing_id, guest, date(2027, 3, 2), [10000, 10000, 12000], status="COMPLETED")
        b = stay(
            listing_id,
            guest,
            date(2027, 3, 10),
            [10000, 10000],
            status="CANCELED",
            canceled_at=datetime(2027, 3, 8, 10, 0, tzinfo=UTC),
            canceled_by="GUEST",
        )
        c = stay(listing_id, guest, date(2027, 3, 30), [10000] * 3, status="COMPLETED")
        d = stay(
            listing_id,
            guest,
            date(2027, 5, 10),
            [10000],
            status="CANCELED",
            canceled_at=datetime(2027, 3, 31, 23, 30, tzinfo=UTC),
            canceled_by="HOST",
        )
        e = stay(listing_id, guest, date(2027, 2, 10), [10000] * 2, status="COMPLETED")
        session.add_all([a, b, c, d, e])
        await session.flush()
        assert (a.total_minor, b.total_minor, c.total_minor) == (39900, 26220, 37620)
        session.add_all(
            [
                paid(a, refunded=5000, status="PARTIALLY_REFUNDED"),
                paid(b, refunded=16220, status="PARTIALLY_REFUNDED"),
                paid(c),
                paid(e),
                Payout(
                    booking_id=c.id,
                    host_id=host.id,
                    currency="EUR",
                    amount_minor=32010,
                    host_fee_minor=990,
                    refunds_minor=0,
                    earned_on=c.check_out,
                    status="PAID",
                    idempotency_key=f"payout-test-{c.id}",
                ),
                BlockedNight(listing_id=listing_id, night=date(2027, 3, 20)),
                BlockedNight(listing_id=listing_id, night=date(2027, 3, 21)),
                review(
                    a,
                    host.id,
                    datetime(2027, 3, 6, 12, tzinfo=UTC),
                    rating=4,
                    cleanliness=5,
                    accuracy=4,
                    communication=5,
                    location=3,
                    check_in=5,
                    value=4,
                ),
                # Counted: midnight and a half in Lisbon on 1 March is still 1 March.
                review(
                    e, host.id, datetime(2027, 3, 1, 0, 30, tzinfo=UTC), rating=5, cleanliness=4
                ),
            ]
        )
    return host


async def analytics(
    client: httpx.AsyncClient, host: Host, start: str, end: str, listing: str | None = None
) -> dict:
    body = await gql(
        client,
        ANALYTICS,
        {"from": start, "to": end, "listing": listing},
        headers=host.headers,
    )
    assert "errors" not in body, body
    return body["data"]["hostAnalytics"]


def amounts(money: dict) -> dict:
    return {
        "nights": money["nightsBooked"],
        "adr": money["averageDailyRate"] and money["averageDailyRate"]["amount"],
        "gross": money["grossRevenue"]["amount"],
        "fees": money["fees"]["amount"],
        "refunds": money["refunds"]["amount"],
        "net": money["netPayouts"]["amount"],
    }


async def test_a_month_with_a_cancellation_a_partial_refund_and_a_stay_into_the_next(
    client: httpx.AsyncClient, database: Database
) -> None:
    host = await march_of_a_host(client, database)
    march = await analytics(client, host, "2027-03-01", "2027-03-31")
    totals = march["totals"]
    assert (march["listings"], totals["from"], totals["to"]) == (1, "2027-03-01", "2027-03-31")
    # 31 nights less the 2 blocked; booked: A's 3 and C's first 2 (B was canceled).
    assert (totals["nightsAvailable"], totals["nightsBooked"]) == (29, 5)
    assert abs(totals["occupancyRate"] - 5 / 29) < 1e-9
    # D was declined on 1 April at the listing, though on 31 March in UTC.
    assert totals["cancellations"] == {"total": 1, "byGuest": 1, "byHost": 0, "byOthers": 0}
    [euros] = totals["byCurrency"]
    assert euros["currency"] == "EUR"
    assert amounts(euros) == {
        "nights": 5,
        "adr": "104.00",  # (100 + 100 + 120 + 100 + 100) / 5
        "gross": "810.00",  # 350.00 + 230.00 + 230.00
        "fees": "24.30",  # 10.50 + 6.90 + 6.90
        "refunds": "212.20",  # 50.00 + 162.20
        "net": "573.50",  # 289.50 + 60.90 + 223.10
    }
    assert [month["from"] for month in march["months"]] == ["2027-03-01"]
    assert march["months"][0]["byCurrency"] == totals["byCurrency"]
    # A's review (4; 5, 4, 5, 3, 5, 4) and E's (5; cleanliness 4).
    assert march["ratings"] == {
        "reviews": 2,
        "overall": 4.5,
        "cleanliness": 4.5,
        "accuracy": 4.0,
        "communication": 5.0,
        "location": 3.0,
        "checkIn": 5.0,
        "value": 4.0,
    }


async def test_a_period_over_two_months_splits_the_stay_that_crosses_them(
    client: httpx.AsyncClient, database: Database
) -> None:
    host = await march_of_a_host(client, database)
    both = await analytics(client, host, "2027-03-01", "2027-04-30")
    march, april = both["months"]
    assert (march["from"], march["to"], april["from"], april["to"]) == (
        "2027-03-01",
        "2027-03-31",
        "2027-04-01",
        "2027-04-30",
    )
    assert amounts(march["byCurrency"][0])["net"] == "573.50"
    assert (april["nightsAvailable"], april["nightsBooked"]) == (30, 1)
    assert april["cancellations"] == {"total": 1, "byGuest": 0, "byHost": 1, "byOthers": 0}
    # C's last night: 100.00 of its 330.00; the rest of its fee and payout.
    assert amounts(april["byCurrency"][0]) == {
        "nights": 1,
        "adr": "100.00",
        "gross": "100.00",
        "fees": "3.00",  # 9.90 - 6.90
        "refunds": "0.00",
        "net": "97.00",  # 320.10 - 223.10
    }
    totals = both["totals"]
    assert (totals["nightsAvailable"], totals["nightsBooked"]) == (59, 6)
    assert totals["cancellations"]["total"] == 2
    assert amounts(totals["byCurrency"][0]) == {
        "nights": 6,
        "adr": "103.33",  # 620.00 / 6, half up
        "gross": "910.00",
        "fees": "27.30",
        "refunds": "212.20",
        "net": "670.50",
    }


async def test_a_partial_month_counts_only_its_nights(
    client: httpx.AsyncClient, database: Database
) -> None:
    host = await march_of_a_host(client, database)
    part = await analytics(client, host, "2027-03-04", "2027-03-30")
    [month] = part["months"]
    assert (month["from"], month["to"]) == ("2027-03-04", "2027-03-30")
    # 27 nights less the 2 blocked; A's last night and C's first.
    assert (month["nightsAvailable"], month["nightsBooked"]) == (25, 2)
    # A's last night weighs 120 of its 350: fee 10.50 - floor(1050 x 230/350) = 3.60, refunds
    # 50.00 - 32.85 = 17.15, net 289.50 - floor(28950 x 230/350) = 99.26. All of B. C's first
    # night weighs 130 of 330: fee 3.90, net 126.10.
    assert amounts(month["byCurrency"][0]) == {
        "nights": 2,
        "adr": "110.00",  # (120 + 100) / 2
        "gross": "480.00",  # 120 + 230 + 130
        "fees": "14.40",  # 3.60 + 6.90 + 3.90
        "refunds": "179.35",  # 17.15 + 162.20
        "net": "286.26",  # 99.26 + 60.90 + 126.10
    }
    assert part["totals"]["byCurrency"] == month["byCurrency"]


async def test_the_preferred_currency_converts_each_sum_at_todays_rate(
    client: httpx.AsyncClient, database: Database
) -> None:
    host = await march_of_a_host(client, database)
    march = await analytics(client, host, "2027-03-01", "2027-03-31")
    async with database.read_session() as session:
        rates = dict(
            (await session.execute(select(ExchangeRate.currency, ExchangeRate.usd_per_unit))).all()
        )
    rate = rate_between(rates["EUR"], rates["USD"])  # the host prefers US dollars
    dollars = march["totals"]["inPreferredCurrency"]
    assert dollars["currency"] == "USD"
    assert dollars["nightsBooked"] == 5
    assert dollars["netPayouts"]["amount"] == f"{convert(57350, 'EUR', rate, 'USD') / 100:.2f}"
    assert dollars["grossRevenue"]["amount"] == f"{convert(81000, 'EUR', rate, 'USD') / 100:.2f}"


async def test_blocked_nights_and_other_listings(
    client: httpx.AsyncClient, database: Database
) -> None:
    host = await march_of_a_host(client, database)
    # A second listing of the host, in US dollars, with nothing booked.
    second = await create(
        client,
        host.token,
        nightlyPrice={"amount": "80", "currency": "USD"},
        cleaningFee={"amount": "10", "currency": "USD"},
    )
    async with committed(database) as session:
        for day in range(1, 11):
            session.add(
                BlockedNight(listing_id=database_id(second["id"]), night=date(2027, 3, day))
            )
    both = await analytics(client, host, "2027-03-01", "2027-03-31")
    assert both["listings"] == 2
    # 2 x 31 nights, less 2 + 10 blocked.
    assert (both["totals"]["nightsAvailable"], both["totals"]["nightsBooked"]) == (50, 5)
    only_second = await analytics(client, host, "2027-03-01", "2027-03-31", second["id"])
    assert only_second["listings"] == 1
    assert only_second["totals"]["nightsAvailable"] == 21
    assert only_second["totals"]["byCurrency"] == []
    assert only_second["ratings"]["reviews"] == 0
    assert only_second["ratings"]["overall"] is None
    only_first = await analytics(client, host, "2027-03-01", "2027-03-31", host.listing_id)
    assert amounts(only_first["totals"]["byCurrency"][0])["net"] == "573.50"


async def test_who_may_ask_and_what(client: httpx.AsyncClient, database: Database) -> None:
    host = await a_host(client)
    other = await a_host(client)
    variables = {"from": "2027-03-01", "to": "2027-03-31"}

    mine = await gql(
        client, ANALYTICS, {**variables, "listing": other.listing_id}, headers=host.headers
    )
    assert error_code(mine) == "NOT_FOUND"
    guest = (await register(client))["accessToken"]
    assert error_code(await gql(client, ANALYTICS, variables, headers=bearer(guest))) == "FORBIDDEN"
    assert error_code(await gql(client, ANALYTICS, variables)) == "UNAUTHENTICATED"

    backwards = await gql(
        client, ANALYTICS, {"from": "2027-03-02", "to": "2027-03-01"}, headers=host.headers
    )
    assert error_code(backwards) == "BAD_USER_INPUT"
    assert "to" in backwards["errors"][0]["extensions"]["fields"]
    too_long = await gql(
        client, ANALYTICS, {"from": "2027-01-01", "to": "2028-01-02"}, headers=host.headers
    )
    assert error_code(too_long) == "BAD_USER_INPUT"
    a_year = await gql(
        client, ANALYTICS, {"from": "2028-01-01", "to": "2028-12-31"}, headers=host.headers
    )
    assert "errors" not in a_year, a_year
    assert len(a_year["data"]["hostAnalytics"]["months"]) == 12
    not_a_listing = await gql(
        client, ANALYTICS, {**variables, "listing": "nonsense"}, headers=host.headers
    )
    assert error_code(not_a_listing) == "BAD_USER_INPUT"


async def test_a_year_of_fifty_listings_is_one_statement(
    client: httpx.AsyncClient, database: Database
) -> None:
    host = await march_of_a_host(client, database)
    guest = await a_guest(client)
    for index in range(49):
        listing = await create(client, host.token, title=f"Flat {index}")
        async with committed(database) as session:
            session.add(
                stay(
                    database_id(listing["id"]),
                    guest,
                    date(2027, 6, 1) + timedelta(days=3 * index),
                    [9000] * 5,
                    status="CONFIRMED",
                )
            )
    counts = []
    for start, end in (("2027-03-01", "2027-03-31"), ("2027-01-01", "2027-12-31")):
        with StatementCounter(database) as counter:
            body = await gql(client, ANALYTICS, {"from": start, "to": end}, headers=host.headers)
        assert "errors" not in body, body
        counts.append(counter.count)
    assert body["data"]["hostAnalytics"]["listings"] == 50
    assert len(body["data"]["hostAnalytics"]["months"]) == 12
    # The viewer (the permission check and the host's currency share one loader), then the one
    # statement of hostAnalytics, whatever the period or the number of listings.
    assert counts == [2, 2], counts
