"""Search benchmark: GraphQL against the same searches in plain SQL through asyncpg.

    ROOST_DATA_DIR=.bench uv run roost seed --listings 100000
    ROOST_DATA_DIR=.bench uv run roost serve --workers 2 &
    uv run python bench/search.py --database-url 'postgresql://postgres@/postgres?host=.bench/pg'

A mix of realistic searches (city + dates + guests; near + price; amenities; deep pages), each a
20-listing page with host, photos and amenities, is run for a bounded number of requests at the
given concurrency, first through the GraphQL endpoint, then as hand-written SQL. It prints
p50/p95/p99 latency and requests per second for both, and their ratio.
"""

import argparse
import asyncio
import math
import random
import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

CITIES = {
    "Lisbon": (38.7223, -9.1393), "Paris": (48.8566, 2.3522), "London": (51.5072, -0.1276),
    "New York": (40.7128, -74.0060), "Tokyo": (35.6762, 139.6503), "Barcelona": (41.3874, 2.1686),
    "Rome": (41.9028, 12.4964), "Sydney": (-33.8688, 151.2093), "Mexico City": (19.4326, -99.1332),
    "Cape Town": (-33.9249, 18.4241), "Berlin": (52.52, 13.405), "Bangkok": (13.7563, 100.5018),
}  # fmt: skip
AMENITY_SETS = [["wifi", "pool"], ["kitchen", "washer", "free_parking"], ["wifi", "workspace"]]
# A results page as a frontend shows it: about 500 fields for 20 listings.
PAGE_FIELDS = """
  totalCount
  pageInfo { hasNextPage endCursor }
  edges { node {
    id title propertyType rating reviewCount
    nightlyPrice { amount currency formatted }
    address { city country }
    host { firstName avatarUrl }
    photos { url }
    amenities { code }
  } }
"""
QUERY = f"""
query Search($filter: ListingFilter, $sort: ListingSort, $after: String) {{
  searchListings(filter: $filter, sort: $sort, first: 20, after: $after) {{ {PAGE_FIELDS} }}
}}
"""


@dataclass(frozen=True)
class Search:
    kind: str
    filter: dict[str, Any]
    sort: str
    pages: int = 1  # deep searches walk this many pages


def searches(count: int, seed: int = 11) -> list[Search]:
    rng = random.Random(seed)
    today = date.today()
    made = []
    for i in range(count):
        city, (lat, lng) = rng.choice(list(CITIES.items()))
        kind = ["city+dates+guests", "near+price", "amenities", "deep pages"][i % 4]
        if kind == "city+dates+guests":
            check_in = today + timedelta(days=rng.randint(5, 300))
            made.append(
                Search(
                    kind,
                    {
                        "location": city,
                        "checkIn": check_in.isoformat(),
                        "checkOut": (check_in + timedelta(days=rng.randint(2, 5))).isoformat(),
                        "guests": rng.randint(1, 4),
                    },
                    "RELEVANCE",
                )
            )
        elif kind == "near+price":
            made.append(
                Search(
                    kind,
                    {
                        "near": {
                            "latitude": lat,
                            "longitude": lng,
                            "radiusKm": rng.choice([3, 8, 15]),
                        },
                        "minPrice": "40",
                        "maxPrice": str(rng.choice([120, 200, 350])),
                        "currency": rng.choice(["USD", "EUR"]),
                    },
                    "PRICE_ASC",
                )
            )
        elif kind == "amenities":
            made.append(
                Search(kind, {"location": city, "amenities": rng.choice(AMENITY_SETS)}, "RATING")
            )
        else:
            made.append(Search(kind, {"location": city}, "NEWEST", pages=5))
    return made


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1000, q[94] * 1000, q[98] * 1000


async def run_graphql(
    url: str, plan: list[Search], concurrency: int, by_kind: dict[str, list[float]] | None = None
) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    work = iter(plan)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            for search in work:
                after = None
                for _ in range(search.pages):
                    started = time.perf_counter()
                    response = await client.post(
                        url,
                        json={
                            "query": QUERY,
                            "variables": {
                                "filter": search.filter,
                                "sort": search.sort,
                                "after": after,
                            },
                        },
                    )
                    latencies.append(time.perf_counter() - started)
                    if by_kind is not None:
                        by_kind.setdefault(search.kind, []).append(latencies[-1])
                    body = orjson.loads(response.content)
                    if response.status_code != 200 or "errors" in body:
                        failures += 1
                        break
                    page = body["data"]["searchListings"]
                    after = page["pageInfo"]["endCursor"]
                    if not page["pageInfo"]["hasNextPage"]:
                        break

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures


# The same searches in plain SQL: what a hand-written endpoint would send.
LISTING_COLUMNS = """
  l.id, l.title, l.property_type, l.latitude, l.longitude, l.max_guests, l.bedrooms, l.beds,
  l.bathrooms, l.rating_avg, l.review_count, l.instant_book, l.nightly_price_minor, l.currency,
  l.city, l.region, l.country, l.host_id, l.amenity_ids, l.created_at
"""
PUBLISHED = "l.status = 'PUBLISHED' AND l.deleted_at IS NULL"


def tsquery(text: str) -> str:
    return " & ".join(f"{word.lower()}:*" for word in text.split())


def sql_for(search: Search, after: tuple | None) -> tuple[str, str, list[Any]]:
    """(page SQL, count SQL, parameters) for one page of a search."""
    f = search.filter
    where, params = [PUBLISHED], []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if "location" in f:
        where.append(f"l.search_vector @@ to_tsquery('simple', {param(tsquery(f['location']))})")
    if "checkIn" in f:
        ci, co = date.fromisoformat(f["checkIn"]), date.fromisoformat(f["checkOut"])
        p_in, p_out = param(ci), param(co)
        nights = param((co - ci).days)
        where += [
            f"l.max_guests >= {param(f['guests'])}",
            f"l.min_nights <= {nights}",
            f"(l.max_nights IS NULL OR l.max_nights >= {nights})",
            f"NOT EXISTS (SELECT 1 FROM blocked_night b WHERE b.listing_id = l.id"
            f" AND b.night >= {p_in} AND b.night < {p_out})",
            f"NOT EXISTS (SELECT 1 FROM booking k WHERE k.listing_id = l.id AND k.status IN"
            f" ('PENDING', 'CONFIRMED') AND k.check_in < {p_out} AND k.check_out > {p_in})",
        ]
    if "near" in f:
        near = f["near"]
        lat, lng, radius = near["latitude"], near["longitude"], near["radiusKm"]
        dlat, dlng = radius / 111.32, radius / (111.32 * math.cos(math.radians(lat)))
        where.append(
            f"point(l.longitude, l.latitude) <@ box(point({param(lng - dlng)}, {param(lat - dlat)}),"
            f" point({param(lng + dlng)}, {param(lat + dlat)}))"
        )
        p_lat, p_lng = param(lat), param(lng)
        where.append(
            f"2 * 6371.0088 * asin(sqrt(least(power(sin((radians(l.latitude) - radians({p_lat})) / 2), 2)"
            f" + cos(radians({p_lat})) * cos(radians(l.latitude))"
            f" * power(sin((radians(l.longitude) - radians({p_lng})) / 2), 2), 1))) <= {param(float(radius))}"
        )
    if "minPrice" in f:
        rate = f"(SELECT usd_per_unit FROM exchange_rate WHERE currency = {param(f['currency'])})"
        where.append(f"l.nightly_price_usd >= {param(float(f['minPrice']))}::numeric * {rate}")
        where.append(f"l.nightly_price_usd <= {param(float(f['maxPrice']))}::numeric * {rate}")
    if "amenities" in f:
        where.append(
            "l.amenity_ids @> (SELECT array_agg(id ORDER BY id) FROM amenity"
            f" WHERE code = ANY({param(f['amenities'])}::text[]))"
        )
    count_sql = f"SELECT count(*) FROM listing l WHERE {' AND '.join(where)}"
    count_params = list(params)
    key = {
        "RELEVANCE": "ts_rank(l.search_vector, to_tsquery('simple', $1))::float8",
        "PRICE_ASC": "l.nightly_price_usd",
        # As Listing.rating: no rating below 3 published reviews.
        "RATING": "coalesce(CASE WHEN l.review_count >= 3 THEN l.rating_avg END, -1)",
        "NEWEST": "l.created_at",
    }[search.sort]
    ascending = search.sort == "PRICE_ASC"
    if after is not None:
        op = ">" if ascending else "<"
        where.append(f"({key}, l.id) {op} ({param(after[0])}, {param(after[1])})")
    direction = "ASC" if ascending else "DESC"
    page_sql = (
        f"SELECT {LISTING_COLUMNS}, {key} AS sort_key FROM listing l WHERE {' AND '.join(where)}"
        f" ORDER BY sort_key {direction}, l.id {direction} LIMIT 21"
    )
    return page_sql, count_sql, (params, count_params)  # type: ignore[return-value]


async def run_sql(
    database_url: str, plan: list[Search], concurrency: int
) -> tuple[list[float], int]:
    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency)
    catalogue = {
        row["id"]: {"code": row["code"], "name": row["name"], "category": row["category"]}
        for row in await pool.fetch("SELECT id, code, name, category FROM amenity")
    }
    latencies: list[float] = []
    work = iter(plan)

    async def one_page(connection: asyncpg.Connection, search: Search, after: tuple | None):
        page_sql, count_sql, (params, count_params) = sql_for(search, after)
        rows = await connection.fetch(page_sql, *params)
        total = await connection.fetchval(count_sql, *count_params)
        rows, has_next = rows[:20], len(rows) > 20
        ids = [row["id"] for row in rows]
        hosts = {
            row["id"]: row
            for row in await connection.fetch(
                "SELECT u.id, u.first_name, u.last_name, p.thumbnail_key FROM user_account u"
                " LEFT JOIN upload p ON p.id = u.avatar_upload_id WHERE u.id = ANY($1::bigint[])",
                list({row["host_id"] for row in rows}),
            )
        }
        photos: dict[int, list] = {}
        for photo in await connection.fetch(
            "SELECT f.id, f.listing_id, p.storage_key, p.width, p.height FROM listing_photo f"
            " JOIN upload p ON p.id = f.upload_id WHERE f.listing_id = ANY($1::bigint[])"
            " ORDER BY f.listing_id, f.position",
            ids,
        ):
            photos.setdefault(photo["listing_id"], []).append(
                {
                    "id": photo["id"],
                    "url": f"/media/{photo['storage_key']}",
                    "width": photo["width"],
                    "height": photo["height"],
                }
            )
        body = orjson.dumps(
            {
                "totalCount": total,
                "hasNextPage": has_next,
                "edges": [
                    {
                        "id": row["id"],
                        "title": row["title"],
                        "propertyType": row["property_type"],
                        "latitude": row["latitude"],
                        "longitude": row["longitude"],
                        "maxGuests": row["max_guests"],
                        "bedrooms": row["bedrooms"],
                        "beds": row["beds"],
                        "bathrooms": float(row["bathrooms"]),
                        "rating": float(row["rating_avg"])
                        if row["rating_avg"] is not None and row["review_count"] >= 3
                        else None,
                        "reviewCount": row["review_count"],
                        "instantBook": row["instant_book"],
                        "nightlyPrice": {
                            "amount": str(row["nightly_price_minor"]),
                            "currency": row["currency"],
                        },
                        "address": {
                            "city": row["city"],
                            "region": row["region"],
                            "country": row["country"],
                        },
                        "host": dict(hosts[row["host_id"]]) if row["host_id"] in hosts else None,
                        "photos": photos.get(row["id"], []),
                        "amenities": [catalogue[a] for a in row["amenity_ids"] if a in catalogue],
                    }
                    for row in rows
                ],
            },
            default=str,
        )
        last = rows[-1] if rows else None
        return body, has_next, (last["sort_key"], last["id"]) if last else None

    async def worker() -> None:
        async with pool.acquire() as connection:
            for search in work:
                after = None
                for _ in range(search.pages):
                    started = time.perf_counter()
                    _, has_next, after = await one_page(connection, search, after)
                    latencies.append(time.perf_counter() - started)
                    if not has_next:
                        break

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await pool.close()
    return latencies, 0


async def plan_stability(database_url: str) -> None:
    """One prepared search run 12 times on one connection: does a later run get slower?

    PostgreSQL may switch a prepared statement to a generic plan after five runs; Roost's
    connections set plan_cache_mode=force_custom_plan, and so does this check."""
    connection = await asyncpg.connect(
        database_url, server_settings={"plan_cache_mode": "force_custom_plan"}
    )
    search = Search("city+dates+guests", {
        "location": "Paris", "guests": 2, "checkIn": (date.today() + timedelta(days=40)).isoformat(),
        "checkOut": (date.today() + timedelta(days=43)).isoformat(),
    }, "RELEVANCE")  # fmt: skip
    page_sql, _, (params, _) = sql_for(search, None)
    statement = await connection.prepare(page_sql)
    runs = []
    for _ in range(12):
        started = time.perf_counter()
        await statement.fetch(*params)
        runs.append((time.perf_counter() - started) * 1000)
    await connection.close()
    later = statistics.median(runs[6:])
    print(
        f"plan stability: first run {runs[0]:.1f} ms, median of runs 7-12 {later:.1f} ms "
        f"({later / runs[0]:.2f}x)"
    )


def report(name: str, latencies: list[float], elapsed: float, failures: int) -> float:
    p50, p95, p99 = percentiles(latencies)
    rps = len(latencies) / elapsed
    print(
        f"{name:<10}{len(latencies):>8}{rps:>9.1f}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}"
        f"{max(latencies) * 1000:>9.1f}{failures:>9}"
    )
    return rps


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument(
        "--database-url", required=True, help="the server's database, for the SQL run"
    )
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    plan = searches(args.searches)
    warmup = searches(40, seed=99)
    print(f"{args.searches} searches (deep ones walk 5 pages), concurrency {args.concurrency}")
    print(
        f"{'':<10}{'pages':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'failed':>9}"
    )

    await run_graphql(args.url, warmup, args.concurrency)
    started = time.perf_counter()
    by_kind: dict[str, list[float]] = {}
    latencies, failures = await run_graphql(args.url, plan, args.concurrency, by_kind)
    graphql_rps = report("GraphQL", latencies, time.perf_counter() - started, failures)
    for kind, kind_latencies in sorted(by_kind.items()):
        p50, p95, _ = percentiles(kind_latencies)
        print(f"  {kind:<20} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  ({len(kind_latencies)} pages)")

    await run_sql(args.database_url, warmup, args.concurrency)
    started = time.perf_counter()
    latencies, failures = await run_sql(args.database_url, plan, args.concurrency)
    sql_rps = report("plain SQL", latencies, time.perf_counter() - started, failures)
    print(f"GraphQL/SQL throughput ratio: {graphql_rps / sql_rps:.2f}")
    await plan_stability(args.database_url)


if __name__ == "__main__":
    asyncio.run(main())
