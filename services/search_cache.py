"""Which generation of search results is current: cached searches are keyed by it.

Database triggers raise it in the transaction of every change a search result shows (a
listing, its photos, calendar, night prices and bookings, its host's profile, an exchange
rate), whoever makes the change: a service, a script or plain SQL. Writers call nothing. The
generation is the sum of 64 counters, one per shard of listings (listing id % 64), so it
moves exactly when such a change commits, never goes back, and writers of listings in
different shards never wait for each other (migration 0010).
"""

from db.database import Database
from db.raw import fetch


async def current_generation(database: Database) -> int | None:
    rows = await fetch(database, "SELECT sum(value)::bigint AS value FROM search_generation")
    return rows[0]["value"] if rows else None
