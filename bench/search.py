"""Search benchmark: GraphQL against the same searches in plain SQL through asyncpg.

    ROOST_DATA_DIR=.bench uv run roost seed --listings 100000
    ROOST_DATA_DIR=.bench uv run roost serve --workers 2 &
    uv run python bench/search.py --database-url 'postgresql://postgres@/postgres?host=.bench/pg'

With ``--wrk``, against the hand-written reference endpoint instead (bench/search_reference.py),
both driven by wrk, a C load generator (``apt-get install wrk``: Python clients were themselves
the bottleneck), in alternating rounds on the same database:

    export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/roost_bench
    uv run roost seed --listings 100000            # once, into that database
    ROOST_SEARCH_CACHE_SECONDS=0 ROOST_RUN_WORKER_IN_PROCESS=0 ROOST_DATA_DIR=/tmp/sb \
        uv run roost serve --workers 2 --port 8765 &      # REDIS_URL unset
    REFERENCE_DATABASE_URL=$DATABASE_URL REFERENCE_MEDIA_URL=http://127.0.0.1:8765/media \
        uv run uvicorn --app-dir bench search_reference:app --workers 2 --port 8777 \
        --no-access-log &
    uv run python bench/search.py --wrk --url http://127.0.0.1:8765/graphql \
        --reference-url http://127.0.0.1:8777/search --rounds 3 --duration 15

The search cache is off (every request is searched), and so is the job loop that `roost serve`
runs in each process in development (in production it is a process of its own, `roost worker`):
its sweep every second would be work the reference does not do.

The request mix (the first pages of the searches below, and the later pages of the deep ones,
their cursors taken from the reference, which makes Roost's own) is checked once against both
servers: every page must be an answer without errors, and the script says how many are
byte-identical. Each wrk round (2 threads, 8 connections) POSTs the bodies round-robin; the
script prints each side's req/s, p50, p95 and p99 (median of the rounds) and the ratios.

A mix of realistic searches (city + dates + guests; near + price; amenities; deep pages), each a
20-listing page with host, photos and amenities, is run for a bounded number of requests at the
given concurrency, first through the GraphQL endpoint, then as hand-written SQL. It prints
p50/p95/p99 latency and requests per second for both, and their ratio.
"""

import argparse
import asyncio
import re
import statistics
import subprocess
import tempfile
import time
from datetime import date, timedelta

import asyncpg
import httpx
import orjson
from search_sql import QUERY, Search, searches, sql_for


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


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("PERCENTILES_US %%d %%d %%d %%d\\n", latency:percentile(50),
    latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end
"""


async def wrk_mix(
    reference_url: str, roost_url: str, count: int
) -> tuple[list[bytes], list[bytes]]:
    """The request bodies for Roost and for the reference: the mix's pages, walked through the
    reference; each page checked on both sides once."""
    roost: list[bytes] = []
    reference: list[bytes] = []
    identical = 0
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=120, headers=headers) as client:
        for search in searches(count):
            after = None
            for _ in range(search.pages):
                variables = {"filter": search.filter, "sort": search.sort, "after": after}
                reference.append(orjson.dumps(variables))
                roost.append(orjson.dumps({"query": QUERY, "variables": variables}))
                ours = await client.post(reference_url, content=reference[-1])
                theirs = await client.post(roost_url, content=roost[-1])
                body = orjson.loads(theirs.content)
                if ours.status_code != 200 or theirs.status_code != 200 or "errors" in body:
                    raise SystemExit(f"{search}: {theirs.status_code} {theirs.text[:300]}")
                identical += ours.content == theirs.content
                page = orjson.loads(ours.content)["data"]["searchListings"]["pageInfo"]
                if not page["hasNextPage"]:
                    break
                after = page["endCursor"]
    print(f"{len(roost)} pages in the mix, {identical} byte-identical between the two servers")
    return roost, reference


def wrk_round(
    url: str, bodies: list[bytes], args: argparse.Namespace, seconds: int
) -> tuple[float, list[float], str]:
    """(req/s, [p50, p90, p95, p99] in ms, errors) of one wrk round."""
    lua = ", ".join(f"[==[{body.decode()}]==]" for body in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT % lua)
        script.flush()
        out = subprocess.run(  # noqa: S603 -- our own wrk and script
            [args.wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s",
             "--latency", "-s", script.name, url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    found = re.search(r"PERCENTILES_US (\d+) (\d+) (\d+) (\d+)", out)
    percents = [int(v) / 1000 for v in found.groups()]  # type: ignore[union-attr]
    errors = "; ".join(
        line.strip() for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line
    )
    return rps, percents, errors


async def compare_with_wrk(args: argparse.Namespace) -> None:
    roost, reference = await wrk_mix(args.reference_url, args.url, args.searches)
    sides = {"Roost": (args.url, roost), "reference": (args.reference_url, reference)}
    # Warm both (plans, caches, pools) before the measured rounds.
    for url, bodies in sides.values():
        wrk_round(url, bodies, args, seconds=3)
    results: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in sides}
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, alternating rounds")
    print(f"{'round':<14}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for n in range(args.rounds):
        for name, (url, bodies) in sides.items():
            rps, (p50, p90, p95, p99), errors = wrk_round(url, bodies, args, args.duration)
            results[name].append((rps, [p50, p90, p95, p99]))
            print(
                f"{name + ' ' + str(n + 1):<14}{rps:>9.1f}{p50:>9.1f}{p90:>9.1f}{p95:>9.1f}"
                f"{p99:>9.1f}  {errors}"
            )
    median = {
        name: (
            statistics.median(r for r, _ in runs),
            [statistics.median(p[i] for _, p in runs) for i in range(4)],
        )
        for name, runs in results.items()
    }
    for name, (rps, (p50, _, p95, p99)) in median.items():
        print(
            f"{name:<10} median: {rps:.1f} req/s, p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"
        )
    (roost_rps, roost_p), (ref_rps, ref_p) = median["Roost"], median["reference"]
    print(
        f"| hand-written endpoint | Roost | ratio | Roost p95 vs hand-written p95 |\n"
        f"| {ref_rps:.0f} rps | {roost_rps:.0f} rps | {roost_rps / ref_rps:.2f} |"
        f" {roost_p[2]:.0f} ms vs {ref_p[2]:.0f} ms ({roost_p[2] / ref_p[2]:.2f}x) |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--database-url", help="the server's database, for the SQL run")
    parser.add_argument("--searches", type=int, help="400; with --wrk, 40")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--wrk", nargs="?", const="wrk", help="compare with the reference by wrk")
    parser.add_argument("--reference-url", default="http://127.0.0.1:8777/search")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15, help="seconds a wrk round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if args.wrk:
        args.searches = args.searches or 40
        await compare_with_wrk(args)
        return
    if not args.database_url:
        parser.error("--database-url is needed without --wrk")
    args.searches = args.searches or 400

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
