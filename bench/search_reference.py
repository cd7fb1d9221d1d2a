"""The hand-written reference for bench/search.py: one Starlette + asyncpg + orjson endpoint.

    REFERENCE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/roost_bench \\
    REFERENCE_MEDIA_URL=http://127.0.0.1:8765/media \\
    uv run uvicorn --app-dir bench search_reference:app --workers 2 --port 8766 --no-access-log

``POST /search`` takes the variables of bench/search.py's GraphQL document (``filter``, ``sort``,
``after``; 20 a page) and answers what Roost answers for that document: ``{"data":
{"searchListings": {totalCount, totalCountIsExact, pageInfo, edges}}}`` with the same fields, ids, cursors, money
formatting and photo URLs (``REFERENCE_MEDIA_URL`` should be the Roost server's media base so the
URLs are as long). It runs the SQL of bench/search_sql.py: the page and the count at the same
time on two connections, as Roost does, then the hosts and the photos of the page. No validation
beyond what the mix needs: it is a yardstick, not an API.
"""

import asyncio
import base64
import json
import os
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import asyncpg
import orjson
from babel.numbers import format_currency, get_currency_precision
from search_sql import COUNT_CAP, Search, sql_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAGE_SIZE = 20
MEDIA_URL = os.environ.get("REFERENCE_MEDIA_URL", "http://127.0.0.1:8765/media").rstrip("/")
state: dict[str, Any] = {}


@lru_cache(maxsize=65_536)
def money(minor: int, currency: str) -> dict[str, str]:
    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    return {
        "amount": str(amount),
        "currency": currency,
        "formatted": format_currency(amount, currency, locale="en_US"),
    }


def global_id(kind: str, row_id: int) -> str:
    return base64.b64encode(f"{kind}:{row_id}".encode()).decode()


def cursor(sort: str, key: Any, listing_id: int) -> str:
    # As Roost's services/cursors.pack: JSON through the standard library, base64url unpadded.
    if isinstance(key, datetime):
        key = key.isoformat()
    elif isinstance(key, Decimal):
        key = str(key)
    raw = json.dumps([sort, key, listing_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def uncursor(text: str, sort: str) -> tuple[Any, int]:
    _, key, listing_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    if sort in ("PRICE_ASC", "RATING"):
        key = Decimal(key)
    elif sort == "NEWEST":
        key = datetime.fromisoformat(key)
    else:
        key = float(key)
    return key, listing_id


async def search(request: Request) -> Response:
    variables = orjson.loads(await request.body())
    query = Search("", variables["filter"], variables["sort"])
    after = variables.get("after")
    page_sql, count_sql, (params, count_params) = sql_for(
        query, uncursor(after, query.sort) if after else None
    )
    pool: asyncpg.Pool = state["pool"]
    rows, counted = await asyncio.gather(
        pool.fetch(page_sql, *params), pool.fetchval(count_sql, *count_params)
    )
    rows, has_next = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    ids = [row["id"] for row in rows]
    async with pool.acquire() as connection:
        hosts = {
            row["id"]: {
                "firstName": row["first_name"],
                "avatarUrl": f"{MEDIA_URL}/{row['thumbnail_key']}"
                if row["thumbnail_key"]
                else None,
            }
            for row in await connection.fetch(
                "SELECT u.id, u.first_name, p.thumbnail_key FROM user_account u"
                " LEFT JOIN upload p ON p.id = u.avatar_upload_id WHERE u.id = ANY($1::bigint[])",
                list({row["host_id"] for row in rows}),
            )
        }
        photos: dict[int, list[dict[str, str]]] = {}
        for photo in await connection.fetch(
            "SELECT f.listing_id, p.storage_key FROM listing_photo f"
            " JOIN upload p ON p.id = f.upload_id WHERE f.listing_id = ANY($1::bigint[])"
            " ORDER BY f.listing_id, f.position",
            ids,
        ):
            photos.setdefault(photo["listing_id"], []).append(
                {"url": f"{MEDIA_URL}/{photo['storage_key']}"}
            )
    codes: dict[int, dict[str, str]] = state["amenities"]
    edges = [
        {
            "node": {
                "id": global_id("Listing", row["id"]),
                "title": row["title"],
                "propertyType": row["property_type"],
                # As Listing.rating: none below 3 reviews.
                "rating": float(row["rating_avg"])
                if row["rating_avg"] is not None and row["review_count"] >= 3
                else None,
                "reviewCount": row["review_count"],
                "nightlyPrice": money(row["nightly_price_minor"], row["currency"]),
                "address": {"city": row["city"], "country": row["country"]},
                "host": hosts[row["host_id"]],
                "photos": photos.get(row["id"], []),
                "amenities": [codes[a] for a in row["amenity_ids"] if a in codes],
            }
        }
        for row in rows
    ]
    last = rows[-1] if rows else None
    page = {
        "totalCount": min(counted, COUNT_CAP),
        "totalCountIsExact": counted <= COUNT_CAP,
        "pageInfo": {
            "hasNextPage": has_next,
            "endCursor": cursor(query.sort, last["sort_key"], last["id"]) if last else None,
        },
        "edges": edges,
    }
    return Response(orjson.dumps({"data": {"searchListings": page}}), media_type="application/json")


@asynccontextmanager
async def lifespan(_: Starlette):  # type: ignore[no-untyped-def]
    # As Roost's connections: custom plans every time, so a page's plan fits its parameters.
    pool = await asyncpg.create_pool(
        os.environ["REFERENCE_DATABASE_URL"],
        min_size=4,
        max_size=16,
        server_settings={"plan_cache_mode": "force_custom_plan"},
    )
    state["pool"] = pool
    state["amenities"] = {
        row["id"]: {"code": row["code"]} for row in await pool.fetch("SELECT id, code FROM amenity")
    }
    yield
    await pool.close()


app = Starlette(routes=[Route("/search", search, methods=["POST"])], lifespan=lifespan)
