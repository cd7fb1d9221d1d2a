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
from services.exchange_rates import store_rates
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
