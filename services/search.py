"""Listing search: filters, sorts and keyset pagination over published listings.

Reads go through SQLAlchemy Core rows, not ORM objects: this is the hottest path of the API.
Every page is one statement (plus one for ``totalCount`` when it is asked for), whatever its size.
"""

import asyncio
import base64
import binascii
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Float,
    Row,
    and_,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from db.database import Database
from db.loaders import LISTING_COLUMNS
from db.models import BlockedNight, Booking, ExchangeRate, Listing
from services.errors import InvalidInput
from services.listings import ACTIVE_BOOKING, normalize_search_text

MAX_PAGE_SIZE = 100
MAX_RADIUS_KM = 500
EARTH_RADIUS_KM = 6371.0088
_WORD = re.compile(r"\w+")

listing = Listing.__table__


class Sort(StrEnum):
    RELEVANCE = "RELEVANCE"
    PRICE_ASC = "PRICE_ASC"
    PRICE_DESC = "PRICE_DESC"
    RATING = "RATING"
    NEWEST = "NEWEST"
    DISTANCE = "DISTANCE"


@dataclass(frozen=True)
class Near:
    latitude: float
    longitude: float
    radius_km: float


@dataclass(frozen=True)
class SearchFilter:
    location: str | None = None
    near: Near | None = None
    check_in: date | None = None
    check_out: date | None = None
    guests: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    currency: str = "USD"
    amenities: Sequence[str] = ()
    property_types: Sequence[str] = ()
    instant_book: bool | None = None


@dataclass
class SearchPage:
    rows: list[Row[Any]]
    cursors: list[str]
    has_next_page: bool
    total_count: int | None = None


def _haversine_km(latitude: float, longitude: float) -> ColumnElement[float]:
    lat, lng = func.radians(listing.c.latitude), func.radians(listing.c.longitude)
    here_lat, here_lng = math.radians(latitude), math.radians(longitude)
    a = func.power(func.sin((lat - here_lat) / 2), 2) + math.cos(here_lat) * func.cos(
        lat
    ) * func.power(func.sin((lng - here_lng) / 2), 2)
    return cast(2 * EARTH_RADIUS_KM * func.asin(func.sqrt(func.least(a, 1.0))), Float)


def _bounding_box(near: Near) -> ColumnElement[bool] | None:
    """A box around the circle, for the GiST index; None where the box would wrap the globe."""
    lat_span = near.radius_km / 111.32
    low_lat, high_lat = near.latitude - lat_span, near.latitude + lat_span
    if low_lat <= -90 or high_lat >= 90:
        return None
    lng_span = near.radius_km / (111.32 * math.cos(math.radians(near.latitude)))
    low_lng, high_lng = near.longitude - lng_span, near.longitude + lng_span
    if low_lng < -180 or high_lng > 180:
        return None
    return literal_column("point(listing.longitude, listing.latitude)").op("<@")(
        func.box(func.point(low_lng, low_lat), func.point(high_lng, high_lat))
    )


def _text_query(location: str) -> str | None:
    words = _WORD.findall(normalize_search_text(location))[:8]
    return " & ".join(f"{word}:*" for word in words) or None


def _check(search: SearchFilter, sort: Sort, first: int) -> None:
    problems: dict[str, str] = {}
    if not 1 <= first <= MAX_PAGE_SIZE:
        problems["first"] = f"must be between 1 and {MAX_PAGE_SIZE}"
    if (search.check_in is None) != (search.check_out is None):
        problems["filter.checkOut"] = "give both checkIn and checkOut, or neither"
    elif search.check_in and search.check_out:
        if search.check_out <= search.check_in:
            problems["filter.checkOut"] = "must be after checkIn"
        elif (search.check_out - search.check_in).days > 365:
            problems["filter.checkOut"] = "a stay is at most 365 nights"
    if search.guests is not None and not 1 <= search.guests <= 50:
        problems["filter.guests"] = "must be between 1 and 50"
    if search.near is not None:
        near = search.near
        if not -90 <= near.latitude <= 90:
            problems["filter.near.latitude"] = "must be between -90 and 90"
        if not -180 <= near.longitude <= 180:
            problems["filter.near.longitude"] = "must be between -180 and 180"
        if not 0 < near.radius_km <= MAX_RADIUS_KM:
            problems["filter.near.radiusKm"] = f"must be above 0 and at most {MAX_RADIUS_KM}"
    elif sort == Sort.DISTANCE:
        problems["sort"] = "DISTANCE needs filter.near"
    for name, price in (
        ("filter.minPrice", search.min_price),
        ("filter.maxPrice", search.max_price),
    ):
        if price is not None and (not price.is_finite() or price < 0):
            problems[name] = "must be zero or more"
    if (
        search.min_price is not None
        and search.max_price is not None
        and search.min_price > search.max_price
    ):
        problems["filter.maxPrice"] = "must not be below minPrice"
    if search.location is not None and len(search.location) > 200:
        problems["filter.location"] = "must be at most 200 characters long"
    if len(search.amenities) > 50 or len(search.property_types) > 10:
        problems["filter"] = "too many amenities or property types"
    if problems:
        raise InvalidInput(fields=problems)


def _sort_key(search: SearchFilter, sort: Sort, text_query: str | None) -> tuple[Any, bool]:
    """The expression a page is ordered by (before the id), and whether it descends."""
    if sort == Sort.PRICE_ASC:
        return listing.c.nightly_price_usd, False
    if sort == Sort.PRICE_DESC:
        return listing.c.nightly_price_usd, True
    if sort == Sort.RATING:
        return func.coalesce(listing.c.rating_avg, -1), True
    if sort == Sort.NEWEST:
        return listing.c.created_at, True
    if sort == Sort.DISTANCE and search.near is not None:  # _check made sure of near
        return _haversine_km(search.near.latitude, search.near.longitude), False
    if text_query:
        return cast(
            func.ts_rank(listing.c.search_vector, func.to_tsquery("simple", text_query)), Float
        ), True
    # Without words to match, the best-reviewed places come first.
    return cast(
        func.coalesce(listing.c.rating_avg, 0) * func.ln(1 + listing.c.review_count), Float
    ), True


def encode_cursor(sort: Sort, key: Any, listing_id: int) -> str:
    if isinstance(key, datetime):
        key = key.isoformat()
    elif isinstance(key, Decimal):
        key = str(key)
    raw = json.dumps([sort.value, key, listing_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, int]:
    bad = InvalidInput.field("after", "is not a cursor of this search")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, key, listing_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    if cursor_sort != sort.value or not isinstance(listing_id, int) or isinstance(key, list):
        raise bad
    try:
        if sort in (Sort.PRICE_ASC, Sort.PRICE_DESC, Sort.RATING):
            key = Decimal(key) if not isinstance(key, int) else key
        elif sort == Sort.NEWEST:
            key = datetime.fromisoformat(key)
        else:
            key = float(key)
    except (ValueError, TypeError, ArithmeticError):
        raise bad from None
    return key, listing_id


async def search_listings(
    database: Database,
    search: SearchFilter,
    *,
    sort: Sort = Sort.RELEVANCE,
    first: int = 20,
    after: str | None = None,
    amenity_ids: dict[str, int],
    with_total: bool = False,
) -> SearchPage:
    """One page; with ``with_total``, the count of every match too, queried at the same time."""
    _check(search, sort, first)
    conditions: list[Any] = [listing.c.status == "PUBLISHED", listing.c.deleted_at.is_(None)]
    text_query = _text_query(search.location) if search.location else None
    if search.location and text_query is None:
        raise InvalidInput.field("filter.location", "has no words to search for")
    if text_query:
        conditions.append(listing.c.search_vector.op("@@")(func.to_tsquery("simple", text_query)))
    if search.near is not None:
        if (box := _bounding_box(search.near)) is not None:
            conditions.append(box)
        conditions.append(
            _haversine_km(search.near.latitude, search.near.longitude) <= search.near.radius_km
        )
    if search.guests is not None:
        conditions.append(listing.c.max_guests >= search.guests)
    if search.instant_book is not None:
        conditions.append(listing.c.instant_book == search.instant_book)
    if search.property_types:
        conditions.append(listing.c.property_type.in_(list(search.property_types)))
    if search.amenities:
        unknown = [code for code in search.amenities if code not in amenity_ids]
        if unknown:
            raise InvalidInput.field("filter.amenities", f"unknown amenities: {', '.join(unknown)}")
        wanted = sorted({amenity_ids[code] for code in search.amenities})
        conditions.append(listing.c.amenity_ids.contains(wanted))
    if search.min_price is not None or search.max_price is not None:
        async with database.engine.connect() as connection:
            rate = await connection.scalar(
                select(ExchangeRate.usd_per_unit).where(ExchangeRate.currency == search.currency)
            )
        if rate is None:
            raise InvalidInput.field("filter.currency", "is not a currency Roost prices in")
        if search.min_price is not None:
            conditions.append(listing.c.nightly_price_usd >= search.min_price * rate)
        if search.max_price is not None:
            conditions.append(listing.c.nightly_price_usd <= search.max_price * rate)
    if search.check_in is not None and search.check_out is not None:
        check_in, check_out = search.check_in, search.check_out
        nights = (check_out - check_in).days
        conditions += [
            listing.c.min_nights <= nights,
            or_(listing.c.max_nights.is_(None), listing.c.max_nights >= nights),
            ~select(BlockedNight.night)
            .where(
                BlockedNight.listing_id == listing.c.id,
                BlockedNight.night >= check_in,
                BlockedNight.night < check_out,
            )
            .exists(),
            ~select(Booking.id)
            .where(
                Booking.listing_id == listing.c.id,
                Booking.status.in_(ACTIVE_BOOKING),
                Booking.check_in < check_out,
                Booking.check_out > check_in,
            )
            .exists(),
        ]

    key, descending = _sort_key(search, sort, text_query)
    page_conditions = list(conditions)
    if after:
        after_key, after_id = decode_cursor(after, sort)
        row_key = tuple_(key, listing.c.id)
        bound = tuple_(literal(after_key), literal(after_id))
        page_conditions.append(row_key < bound if descending else row_key > bound)
    order = [key.desc(), listing.c.id.desc()] if descending else [key.asc(), listing.c.id.asc()]
    statement = (
        select(*LISTING_COLUMNS, key.label("sort_key"))
        .where(and_(*page_conditions))
        .order_by(*order)
        .limit(first + 1)
    )
    count_statement = select(func.count()).select_from(listing).where(and_(*conditions))

    async def fetch(query: Any) -> Any:
        async with database.engine.connect() as connection:
            return (await connection.execute(query)).all()

    if with_total:
        rows, [(total,)] = await asyncio.gather(fetch(statement), fetch(count_statement))
    else:
        rows, total = await fetch(statement), None
    has_next_page = len(rows) > first
    rows = rows[:first]
    return SearchPage(
        rows=rows,
        cursors=[encode_cursor(sort, row.sort_key, row.id) for row in rows],
        has_next_page=has_next_page,
        total_count=total,
    )


async def listings_of_host(
    connection: AsyncConnection, *, host_id: int, first: int = 20, after: str | None = None
) -> SearchPage:
    """A host's own listings, drafts and unlisted ones too, newest first."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions = [listing.c.host_id == host_id, listing.c.deleted_at.is_(None)]
    if after:
        after_key, after_id = decode_cursor(after, Sort.NEWEST)
        conditions.append(
            tuple_(listing.c.created_at, listing.c.id)
            < tuple_(literal(after_key), literal(after_id))
        )
    statement = (
        select(*LISTING_COLUMNS, listing.c.created_at.label("sort_key"))
        .where(*conditions)
        .order_by(listing.c.created_at.desc(), listing.c.id.desc())
        .limit(first + 1)
    )
    rows = list((await connection.execute(statement)).all())
    return SearchPage(
        rows=rows[:first],
        cursors=[encode_cursor(Sort.NEWEST, row.sort_key, row.id) for row in rows[:first]],
        has_next_page=len(rows) > first,
    )
