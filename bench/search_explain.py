"""EXPLAIN (ANALYZE, BUFFERS) of the statements Roost's search sends for bench/search_sql.py's mix.

    uv run python bench/search_explain.py --database-url postgresql://postgres@127.0.0.1:5432/roost_bench

For each kind of search it runs services.search.search_listings (page and count) against the
database, records every statement with its parameters, then explains each one on a connection
with Roost's settings and prints the mean execution time and shared buffers (hit + read) per
statement kind (page, count). Run it twice: the first run warms the cache. With ``--reference``,
the hand-written endpoint's SQL (bench/search_sql.py) for the same mix instead, on the same
database. After ``roost migrate`` to 0033, ``VACUUM ANALYZE listing, listing_calendar`` (or
autovacuum) sets the visibility map that the index-only scans of near and newest pages need.
"""

import argparse
import asyncio
import json
import statistics
import sys
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from search_sql import Search, searches, sql_for

import services.search as search_service
from db.database import Database


def to_filter(search: Search) -> search_service.SearchFilter:
    f = search.filter
    near = f.get("near")
    return search_service.SearchFilter(
        location=f.get("location"),
        near=search_service.Near(near["latitude"], near["longitude"], near["radiusKm"])
        if near
        else None,
        check_in=date.fromisoformat(f["checkIn"]) if "checkIn" in f else None,
        check_out=date.fromisoformat(f["checkOut"]) if "checkOut" in f else None,
        guests=f.get("guests"),
        min_price=Decimal(f["minPrice"]) if "minPrice" in f else None,
        max_price=Decimal(f["maxPrice"]) if "maxPrice" in f else None,
        currency=f.get("currency", "USD"),
        amenities=f.get("amenities", ()),
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--searches", type=int, default=24)
    parser.add_argument("--show", action="store_true", help="print one plan of each kind")
    parser.add_argument(
        "--reference", action="store_true", help="bench/search_sql.py's SQL instead of Roost's"
    )
    args = parser.parse_args()
    database = Database(args.database_url)
    sent: list[tuple[str, str, list[Any]]] = []
    real_fetch = search_service.fetch

    async def recording_fetch(db: Database, sql: str, *values: Any) -> list[Any]:
        sent.append((current, sql, list(values)))
        return await real_fetch(db, sql, *values)

    search_service.fetch = recording_fetch  # type: ignore[assignment]
    pool = await database.reads()
    amenity_ids = {
        row["code"]: row["id"] for row in await pool.fetch("SELECT id, code FROM amenity")
    }
    current = ""
    for search in searches(args.searches) if args.reference else []:
        after = None
        for page_number in range(search.pages):
            page_sql, count_sql, (params, count_params) = sql_for(search, after)
            rows = await pool.fetch(page_sql, *params)
            sent.append((search.kind, page_sql, params))
            if page_number == 0:
                sent.append((search.kind, count_sql, count_params))
            if len(rows) <= 20:
                break
            after = (rows[19]["sort_key"], rows[19]["id"])
    for search in [] if args.reference else searches(args.searches):
        current = search.kind
        after = None
        for _ in range(search.pages):
            page = await search_service.search_listings(
                database,
                to_filter(search),
                sort=search_service.Sort(search.sort),
                first=20,
                after=after,
                amenity_ids=amenity_ids,
                with_total=after is None,
            )
            if not page.has_next_page:
                break
            after = page.cursors[-1]
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    buffers: dict[tuple[str, str], list[int]] = defaultdict(list)
    shown: set[tuple[str, str]] = set()
    async with pool.acquire() as connection:
        for kind, sql, values in sent:
            if "exchange_rate" in sql and "SELECT usd_per_unit" not in sql:
                continue
            what = "count" if sql.startswith("SELECT count") else "page"
            [(plan,)] = await connection.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *values
            )
            top = json.loads(plan)[0]
            node = top["Plan"]
            times[kind, what].append(top["Execution Time"])
            buffers[kind, what].append(node["Shared Hit Blocks"] + node["Shared Read Blocks"])
            if args.show and (kind, what) not in shown:
                shown.add((kind, what))
                rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *values)
                print(f"--- {kind} {what}\n{sql}\n" + "\n".join(r[0] for r in rows))
    print(f"{'kind':20} {'stmt':6} {'n':>3} {'mean ms':>9} {'max ms':>9} {'buffers':>9}")
    for (kind, what), values in sorted(times.items()):
        print(
            f"{kind:20} {what:6} {len(values):3} {statistics.mean(values):9.2f}"
            f" {max(values):9.2f} {statistics.mean(buffers[kind, what]):9.0f}"
        )
    await database.dispose()


asyncio.run(main())
