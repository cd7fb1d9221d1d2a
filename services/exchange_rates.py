"""Keeping exchange rates, and the US-dollar prices search compares, up to date."""

from decimal import Decimal

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ExchangeRate, Listing
from services.money import minor_digits
from services.search_cache import results_changed


def usd_per_minor_unit(currency: str, rate: Decimal) -> Decimal:
    """What one minor unit (a cent, a yen) is worth in US dollars at ``rate`` dollars a unit:
    ``minor * usd_per_minor_unit(...)`` is a listing's ``nightly_price_usd``, in Python or SQL."""
    return rate / Decimal(10) ** minor_digits(currency)


async def store_rates(session: AsyncSession, rates: dict[str, Decimal]) -> int:
    """Upserts the rates, then reprices every listing in a currency that changed."""
    if not rates:
        return 0
    statement = insert(ExchangeRate).values(
        [{"currency": currency, "usd_per_unit": rate} for currency, rate in rates.items()]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ExchangeRate.currency],
            set_={"usd_per_unit": statement.excluded.usd_per_unit, "updated_at": func.now()},
        )
    )
    for currency, rate in rates.items():
        await session.execute(
            update(Listing)
            .where(Listing.currency == currency)
            .values(
                nightly_price_usd=Listing.nightly_price_minor
                * (rate / Decimal(10) ** minor_digits(currency))
            )
        )
    await results_changed(session)
    return len(rates)
