"""Daily exchange rates from a local stand-in for the ECB feed, and the repricing they cause."""

import asyncio
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from app.cli import main as roost
from db.database import Database
from db.models import ExchangeRate, Listing
from gateways.exchange_rates import RatesUnavailable, usd_per_unit_from_ecb
from services.exchange_rates import convert, store_rates
from tests.booking_helpers import a_place, booked, pay
from tests.factories import make_listing, make_user
from tests.helpers import committed, gql, serving

# The shape of https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml
ECB_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
                 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube>
    <Cube time="2026-11-20">
      <Cube currency="USD" rate="1.2500"/>
      <Cube currency="JPY" rate="160.00"/>
      <Cube currency="GBP" rate="0.8000"/>
    </Cube>
  </Cube>
</gesmes:Envelope>
"""


def test_the_feed_becomes_dollars_per_unit() -> None:
    rates = usd_per_unit_from_ecb(ECB_FEED)
    assert rates["EUR"] == Decimal("1.25")
    assert rates["USD"] == Decimal("1")
    assert rates["GBP"] == Decimal("1.5625")
    assert rates["JPY"] == Decimal("0.0078125")


@pytest.mark.parametrize("feed", [b"<not xml", b"<Cube><Cube currency='JPY' rate='1'/></Cube>"])
def test_an_unusable_feed_is_refused(feed: bytes) -> None:
    with pytest.raises(RatesUnavailable):
        usd_per_unit_from_ecb(feed)


@pytest.fixture
async def kept_rates(database: Database):
    """The seeded rates, put back after the test: other tests price with them."""
    async with database.read_session() as session:
        rows = await session.execute(select(ExchangeRate.currency, ExchangeRate.usd_per_unit))
        before = dict(rows.all())
    yield
    async with committed(database) as session:
        await store_rates(session, before)


async def test_update_rates_reprices_listings_for_search(
    client: httpx.AsyncClient,
    database: Database,
    kept_rates: None,
    monkeypatch: pytest.MonkeyPatch,
    app: Starlette,
) -> None:
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        listing = await make_listing(
            session, host=host, nightly_price={"amount": Decimal("100"), "currency": "EUR"}
        )
    search = 'query { searchListings(filter: {minPrice: "120", currency: "USD"}) { totalCount } }'
    assert (await gql(client, search))["data"]["searchListings"]["totalCount"] == 0  # 108 USD

    feed = Starlette(routes=[Route("/daily.xml", lambda request: Response(ECB_FEED))])
    async with serving(feed) as base_url:
        monkeypatch.setenv("ROOST_EXCHANGE_RATES_URL", f"{base_url}/daily.xml")
        monkeypatch.setenv("DATABASE_URL", app.state.settings.database_url)
        assert await asyncio.to_thread(roost, ["update-rates"]) == 0

    async with database.read_session() as session:
        price = await session.scalar(
            select(Listing.nightly_price_usd).where(Listing.id == listing.id)
        )
    assert price == Decimal("125.0000")
    assert (await gql(client, search))["data"]["searchListings"]["totalCount"] == 1


async def test_an_unreachable_provider_changes_nothing(
    database: Database, kept_rates: None, monkeypatch: pytest.MonkeyPatch, app: Starlette
) -> None:
    monkeypatch.setenv("ROOST_EXCHANGE_RATES_URL", "http://127.0.0.1:9/daily.xml")
    monkeypatch.setenv("DATABASE_URL", app.state.settings.database_url)
    assert await asyncio.to_thread(roost, ["update-rates"]) == 2
    async with database.read_session() as session:
        eur = await session.scalar(
            select(ExchangeRate.usd_per_unit).where(ExchangeRate.currency == "EUR")
        )
    assert eur == Decimal("1.08")


PRICES_SHOWN = """
query($id: ID!, $to: String) {
  booking(id: $id) {
    price { total { amount currency converted(to: $to) { amount currency } } }
    payment { amount { converted(to: $to) { amount currency } } }
    listing { nightlyPrice { amount converted(to: $to) { amount currency formatted } } }
  }
}
"""
UPDATE_CURRENCY = """
mutation($c: String!) {
  updateProfile(input: {preferences: {currency: $c}}) { preferences { currency } }
}
"""


def shown(body: dict) -> tuple[str, str, str]:
    """The booking's total, its payment and its listing's nightly price as converted."""
    booking = body["data"]["booking"]
    return (
        booking["price"]["total"]["converted"]["amount"],
        booking["payment"]["amount"]["converted"]["amount"],
        booking["listing"]["nightlyPrice"]["converted"]["amount"],
    )


async def test_a_booking_shows_in_the_guests_currency_at_the_rate_of_the_day_they_paid(
    client: httpx.AsyncClient, database: Database, kept_rates: None
) -> None:
    async with committed(database) as session:  # a euro is 160 yen
        await store_rates(session, {"EUR": Decimal("1.25"), "JPY": Decimal("0.0078125")})
    place = await a_place(client)  # in euros
    changed = await gql(client, UPDATE_CURRENCY, {"c": "JPY"}, headers=place.as_guest)
    assert changed["data"]["updateProfile"]["preferences"]["currency"] == "JPY"
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    total = Decimal(booking["price"]["total"]["amount"])
    async with committed(database) as session:  # the yen falls: a euro is 200 yen
        await store_rates(session, {"JPY": Decimal("0.00625")})

    body = await gql(client, PRICES_SHOWN, {"id": booking["id"]}, headers=place.as_guest)
    assert "errors" not in body, body
    # What the guest paid, at the rate of that day; the listing's price at today's.
    in_yen = str((total * 160).quantize(Decimal(1)))
    assert shown(body) == (in_yen, in_yen, "20000")
    converted = body["data"]["booking"]["listing"]["nightlyPrice"]["converted"]
    assert (converted["currency"], converted["formatted"]) == ("JPY", "¥20,000")
    # In another currency than the one frozen, every amount is at today's rate.
    body = await gql(
        client, PRICES_SHOWN, {"id": booking["id"], "to": "USD"}, headers=place.as_host
    )
    in_dollars = str((total * Decimal("1.25")).quantize(Decimal("0.01")))
    assert shown(body) == (in_dollars, in_dollars, "125.00")


async def test_an_amount_converts_only_to_a_currency_with_a_rate(client: httpx.AsyncClient) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    unknown = await gql(
        client, PRICES_SHOWN, {"id": booking["id"], "to": "XTS"}, headers=place.as_guest
    )
    assert "errors" not in unknown, unknown
    assert unknown["data"]["booking"]["listing"]["nightlyPrice"]["converted"] is None
    same = await gql(
        client, PRICES_SHOWN, {"id": booking["id"], "to": "eur"}, headers=place.as_guest
    )
    assert same["data"]["booking"]["listing"]["nightlyPrice"]["converted"]["amount"] == "100.00"
    for bad in ("EURO", "", "€"):
        body = await gql(
            client, PRICES_SHOWN, {"id": booking["id"], "to": bad}, headers=place.as_guest
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


@pytest.mark.parametrize(
    ("minor", "source", "rate", "target", "expected"),
    [
        (10_000, "USD", Decimal("0.3"), "KWD", 30_000),  # 100.00 dollars: 30.000 dinars
        (12_345, "JPY", Decimal("0.0061"), "EUR", 7_530),  # 75.3045 euros
        (5, "EUR", Decimal("0.5"), "JPY", 0),  # 0.025 yen: half to even, down
        (3, "KWD", Decimal("500"), "JPY", 2),  # 1.5 yen: half to even, up
    ],
)
def test_an_amount_converts_to_the_nearest_minor_unit_of_the_other_currency(
    minor: int, source: str, rate: Decimal, target: str, expected: int
) -> None:
    assert convert(minor, source, rate, target) == expected
