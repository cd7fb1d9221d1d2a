"""`roost seed --listings N` writes rows the way the services would have written them."""

from pathlib import Path

import httpx
from sqlalchemy import func, select, text

from app.scale_data import seed_listings
from db.database import Database
from db.models import ExchangeRate, Listing
from db.states import ListingStatus
from services.exchange_rates import store_rates
from tests.helpers import committed, gql

SEARCH = "{ searchListings(first: 100) { totalCount } }"


async def test_generated_listings_and_bookings_read_as_the_services_write_them(
    client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    await seed_listings(database, count=40, media_root=tmp_path)

    async with database.read_session() as session:
        published = await session.scalar(
            select(func.count()).where(Listing.status == ListingStatus.PUBLISHED)
        )
        prices = dict((await session.execute(select(Listing.id, Listing.nightly_price_usd))).all())
        # Each stay begins on its first day at the listing's check-in time where it is, and ends
        # on its last at the check-out time.
        misplaced = await session.scalar(
            text(
                "SELECT count(*) FROM booking b JOIN listing l ON l.id = b.listing_id"
                " WHERE (b.starts_at AT TIME ZONE l.time_zone)"
                "       <> b.check_in + l.check_in_time"
                "    OR (b.ends_at AT TIME ZONE l.time_zone)"
                "       <> b.check_out + l.check_out_time"
            )
        )
        bookings = await session.scalar(text("SELECT count(*) FROM booking"))
    assert bookings and misplaced == 0
    body = await gql(client, SEARCH)
    assert body["data"]["searchListings"]["totalCount"] == published > 0

    # Repricing at the same rates, as `roost update-rates` does, finds every price already right.
    async with committed(database) as session:
        rates = dict(
            (await session.execute(select(ExchangeRate.currency, ExchangeRate.usd_per_unit))).all()
        )
        await store_rates(session, rates)
    async with database.read_session() as session:
        repriced = dict(
            (await session.execute(select(Listing.id, Listing.nightly_price_usd))).all()
        )
    assert repriced == prices
