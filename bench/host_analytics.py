"""hostAnalytics benchmark: the one statement over a year, for the host with the most listings.

    ROOST_DATA_DIR=.bench uv run roost seed --listings 100000
    uv run python bench/host_analytics.py --database-url 'postgresql://postgres@/postgres?host=.bench/pg'

``--host-listings 50`` first gives that host 50 listings, moving other hosts' listings (with their
bookings) to it: the seed's busiest host has about 20. It changes the benchmark's database.

Runs ``services.analytics.host_analytics`` (the query hostAnalytics sends, and the Python that
shapes its rows) for the year around today, a number of times, and prints the host's listings
and bookings, the statements sent per run, and p50/max latency.
"""

import argparse
import asyncio
import statistics
import time
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import Database
from services.analytics import host_analytics


async def main(url: str, runs: int, host_listings: int | None) -> None:
    database = Database(url)
    statements: list[str] = []
    event.listen(
        database.engine.sync_engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    async with database.read_session() as session:
        host_id, listings = (
            await session.execute(
                text("SELECT host_id, count(*) FROM listing GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
            )
        ).one()
    if host_listings is not None and host_listings > listings:
        move = text(
            "UPDATE listing SET host_id = :host WHERE id IN (SELECT id FROM listing "
            "WHERE host_id <> :host ORDER BY id LIMIT :more)"
        )
        more = host_listings - listings

        async def give(session: AsyncSession) -> None:
            await session.execute(move, {"host": host_id, "more": more})

        await database.transaction(give)
        listings = host_listings
    async with database.read_session() as session:
        bookings = await session.scalar(
            text(
                "SELECT count(*) FROM booking b JOIN listing l ON l.id = b.listing_id "
                "WHERE l.host_id = :host"
            ),
            {"host": host_id},
        )
    start, end = date.today() - timedelta(days=182), date.today() + timedelta(days=182)
    timings: list[float] = []
    for _ in range(runs):
        statements.clear()
        began = time.perf_counter()
        async with database.read_session() as session:
            answer = await host_analytics(
                session,
                host_id=host_id,
                start=start,
                end=end,
                listing_id=None,
                host_fee_percent=Decimal(3),
                preferred_currency="USD",
            )
        timings.append((time.perf_counter() - began) * 1000)
    await database.engine.dispose()
    print(
        f"host {host_id}: {listings} listings, {bookings} bookings, {len(answer.months)} months, "
        f"{answer.totals.nights_booked} nights booked; {len(statements)} statement(s) a run; "
        f"p50 {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms over {runs} runs"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--host-listings", type=int, help="give the busiest host this many")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database_url, arguments.runs, arguments.host_listings))
