"""Exchange rates: what a currency is worth in US dollars, keeping the US-dollar prices
search compares up to date, and amounts shown in another currency."""

from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import Numeric, Text, bindparam, column, func, select, update, values
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import Database
from db.models import Booking, ExchangeRate, Listing
from db.raw import fetch
from services.money import minor_digits

_USD_PER_UNIT = select(ExchangeRate.usd_per_unit).where(
    ExchangeRate.currency == bindparam("currency")
)
# The same query for asyncpg: search reads the rate on its raw pool (0.1 ms of CPU a call,
# where a SQLAlchemy session costs 0.9 ms).
_USD_PER_UNIT_SQL = str(
    # SQLAlchemy's dialect classes are not annotated.
    _USD_PER_UNIT.compile(dialect=PGDialect_asyncpg())  # type: ignore[no-untyped-call]
)


async def usd_per_unit(reader: AsyncSession | Database, currency: str) -> Decimal | None:
    """What one unit of ``currency`` is worth in US dollars; None: Roost does not price in it.

    Read in the caller's session, or, on the hot read path, straight from the database."""
    if isinstance(reader, AsyncSession):
        return await reader.scalar(_USD_PER_UNIT, {"currency": currency})
    rows = await fetch(reader, _USD_PER_UNIT_SQL, currency)
    return rows[0][0] if rows else None


def rate_between(source_usd: Decimal, target_usd: Decimal) -> Decimal:
    """What one unit of a currency worth ``source_usd`` dollars is worth in one worth
    ``target_usd``."""
    return source_usd / target_usd


def convert(minor: int, source: str, rate: Decimal, target: str) -> int:
    """``minor`` units of ``source`` in minor units of ``target`` at ``rate`` (target units per
    source unit), to the nearest minor unit, half to even. For showing, never for charging."""
    value = Decimal(minor).scaleb(minor_digits(target) - minor_digits(source)) * rate
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


async def freeze_display_rate(session: AsyncSession, booking: Booking, currency: str) -> None:
    """Keeps on ``booking`` what its currency is worth in ``currency`` (the paying guest's
    preferred one) now: what it cost them is shown at the rate of the day they paid."""
    source = await usd_per_unit(session, booking.currency)
    target = await usd_per_unit(session, currency)
    if currency == booking.currency or source is None or target is None:
        booking.display_currency, booking.display_rate = None, None
    else:
        booking.display_currency, booking.display_rate = currency, rate_between(source, target)


def usd_per_minor_unit(currency: str, rate: Decimal) -> Decimal:
    """What one minor unit (a cent, a yen) is worth in US dollars at ``rate`` dollars a unit:
    ``minor * usd_per_minor_unit(...)`` is a listing's ``nightly_price_usd``, in Python or SQL."""
    return rate / Decimal(10) ** minor_digits(currency)


async def store_rates(session: AsyncSession, rates: dict[str, Decimal]) -> int:
    """Reprices every listing in a currency that changed, then upserts the rates.

    One statement reprices them all, before the rates are written: the search-cache triggers
    then take their shard locks once, in order, after every listing row is locked, so a
    booking that holds one of those listings cannot be waiting for a shard this holds."""
    if not rates:
        return 0
    factors = values(column("currency", Text), column("factor", Numeric), name="factor").data(
        [(currency, usd_per_minor_unit(currency, rate)) for currency, rate in rates.items()]
    )
    await session.execute(
        update(Listing)
        .where(Listing.currency == factors.c.currency)
        .values(nightly_price_usd=Listing.nightly_price_minor * factors.c.factor)
    )
    statement = insert(ExchangeRate).values(
        [{"currency": currency, "usd_per_unit": rate} for currency, rate in rates.items()]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ExchangeRate.currency],
            set_={"usd_per_unit": statement.excluded.usd_per_unit, "updated_at": func.now()},
        )
    )
    return len(rates)
