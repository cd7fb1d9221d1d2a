"""Listing search: filters, sorts and keyset pagination over published listings.

This is the hottest path of the API, so its SQL is written out and sent through asyncpg
(db/raw.py); every value goes in as a parameter. A page is one statement, plus one for
``totalCount`` when it is asked for, whatever its size.
"""

import asyncio
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any

import orjson

from db.calendar import taken_night_sql
from db.database import Database
from db.loaders import LISTING_SELECT
from db.raw import Parameters, Record, fetch
from db.rows import ListingRow, PhotoRow, UserRow
from db.states import ListingModeration, ListingStatus
from services import cursors
from services.errors import InvalidInput
from services.exchange_rates import usd_per_unit
from services.listings import normalize_search_text
from services.reviews import MIN_REVIEWS_FOR_RATING

MAX_PAGE_SIZE = 100
MAX_RADIUS_KM = 500
# totalCount stops counting here: past it a guest learns "1,000+ places", not the exact figure,
# and a city of 2,000 matches costs half the buffers to count (100,000 listings, measured).
COUNT_CAP = 1_000
EARTH_RADIUS_KM = 6371.0088
_WORD = re.compile(r"\w+")


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
    rows: list[ListingRow]
    cursors: "PageCursors"
    has_next_page: bool
    total_count: int | None = None
    # False when the count stopped at its cap: there are more than ``total_count`` matches.
    total_count_is_exact: bool = True
    # The rows' hosts, in the same order (None for a host with no row), when asked for.
    hosts: list[UserRow | None] | None = None
    # The rows' photos, in the same order, when asked for.
    photos: list[list[PhotoRow]] | None = None


def _haversine_km(p: Parameters, latitude: float, longitude: float) -> str:
    """SQL for the great-circle distance in km from a point to the listing."""
    here_lat, here_lng = math.radians(latitude), math.radians(longitude)
    return (
        f"(2 * {EARTH_RADIUS_KM} * asin(sqrt(least("
        f"power(sin((radians(l.latitude) - {p(here_lat)}) / 2), 2)"
        f" + {p(math.cos(here_lat))} * cos(radians(l.latitude))"
        f" * power(sin((radians(l.longitude) - {p(here_lng)}) / 2), 2), 1))))"
    )


def _bounding_box(p: Parameters, near: Near) -> str | None:
    """A box around the circle, for the GiST index; None where the box would wrap the globe."""
    lat_span = near.radius_km / 111.32
    low_lat, high_lat = near.latitude - lat_span, near.latitude + lat_span
    if low_lat <= -90 or high_lat >= 90:
        return None
    lng_span = near.radius_km / (111.32 * math.cos(math.radians(near.latitude)))
    low_lng, high_lng = near.longitude - lng_span, near.longitude + lng_span
    if low_lng < -180 or high_lng > 180:
        return None
    return (
        f"point(l.longitude, l.latitude) <@ box(point({p(low_lng)}, {p(low_lat)}),"
        f" point({p(high_lng)}, {p(high_lat)}))"
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


def _sort_key(sort: Sort, text_query: str | None, distance: str | None) -> tuple[str, bool]:
    """SQL for what a page is ordered by (before the id), and whether it descends."""
    if sort == Sort.PRICE_ASC:
        return "l.nightly_price_usd", False
    if sort == Sort.PRICE_DESC:
        return "l.nightly_price_usd", True
    if sort == Sort.RATING:
        # The rating a listing shows (schema/listings.py): none below the reviews it takes.
        shown = f"CASE WHEN l.review_count >= {MIN_REVIEWS_FOR_RATING} THEN l.rating_avg END"
        return f"coalesce({shown}, -1)", True
    if sort == Sort.NEWEST:
        return "l.created_at", True
    if sort == Sort.DISTANCE and distance is not None:  # _check made sure of near
        return distance, False
    if text_query is not None:
        return f"ts_rank(l.search_vector, to_tsquery('simple', {text_query}))::float8", True
    # Without words to match, the best-reviewed places come first.
    return "(coalesce(l.rating_avg, 0) * ln(1 + l.review_count))::float8", True


def encode_cursor(sort: Sort, key: Any, listing_id: int) -> str:
    if isinstance(key, datetime):
        key = key.isoformat()
    elif isinstance(key, Decimal):
        key = str(key)
    return cursors.pack(sort.value, key, listing_id)


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, int]:
    problem = "is not a cursor of this search"
    cursor_sort, key, listing_id = cursors.unpack(cursor, size=3, problem=problem)
    if cursor_sort != sort.value or not isinstance(listing_id, int) or isinstance(key, list):
        raise InvalidInput.field("after", problem)
    try:
        if sort in (Sort.PRICE_ASC, Sort.PRICE_DESC, Sort.RATING):
            key = Decimal(key) if not isinstance(key, int) else key
        elif sort == Sort.NEWEST:
            key = datetime.fromisoformat(key)
        else:
            key = float(key)
    except (ValueError, TypeError, ArithmeticError):
        raise InvalidInput.field("after", problem) from None
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
    count_cap: int = COUNT_CAP,
    columns: frozenset[str] | None = None,
    with_hosts: bool = False,
    with_photos: bool = False,
) -> SearchPage:
    """One page; with ``with_total``, the count of the matches too, queried at the same time:
    exact up to ``count_cap``, else ``count_cap`` and not exact.

    ``columns``: the only columns of the listings the caller reads (their ids always come):
    the rows' other columns are None. Decoding a row's forty columns was most of what a page
    of results cost to read, for the ten or so a results page shows. ``with_hosts`` and
    ``with_photos``: the page's hosts and photos are read in the same statement
    (``SearchPage.hosts``, ``SearchPage.photos``), not each by another."""
    _check(search, sort, first)
    p = Parameters()
    where = [
        f"l.status = '{ListingStatus.PUBLISHED}'",
        "l.deleted_at IS NULL",
        f"l.moderation = '{ListingModeration.APPROVED}'",
    ]
    text_query = distance = None
    if search.location:
        words = _text_query(search.location)
        if words is None:
            raise InvalidInput.field("filter.location", "has no words to search for")
        text_query = p(words)
        where.append(f"l.search_vector @@ to_tsquery('simple', {text_query})")
    if search.near is not None:
        if (box := _bounding_box(p, search.near)) is not None:
            where.append(box)
        distance = _haversine_km(p, search.near.latitude, search.near.longitude)
        where.append(f"{distance} <= {p(search.near.radius_km)}")
    if search.guests is not None:
        where.append(f"l.max_guests >= {p(search.guests)}")
    if search.instant_book is not None:
        where.append(f"l.instant_book = {p(search.instant_book)}")
    if search.property_types:
        where.append(f"l.property_type = ANY({p(list(search.property_types))}::text[])")
    if search.amenities:
        unknown = [code for code in search.amenities if code not in amenity_ids]
        if unknown:
            raise InvalidInput.field("filter.amenities", f"unknown amenities: {', '.join(unknown)}")
        wanted = sorted({amenity_ids[code] for code in search.amenities})
        where.append(f"l.amenity_ids @> {p(wanted)}::smallint[]")
    if _filters_price(search):
        # The rate is read in the statement: a round trip less. Without one, nothing matches,
        # and an empty page is checked for why (_refuse_unknown_currency).
        rate = f"(SELECT usd_per_unit FROM exchange_rate WHERE currency = {p(search.currency)})"
        if search.min_price is not None:
            where.append(f"l.nightly_price_usd >= {p(search.min_price)}::numeric * {rate}")
        if search.max_price is not None:
            where.append(f"l.nightly_price_usd <= {p(search.max_price)}::numeric * {rate}")
    if search.check_in is not None and search.check_out is not None:
        check_in, check_out = p(search.check_in), p(search.check_out)
        nights = p((search.check_out - search.check_in).days)
        where += [
            f"l.min_nights <= {nights}",
            f"(l.max_nights IS NULL OR l.max_nights >= {nights})",
            f"NOT {taken_night_sql('l.id', check_in, check_out)}",
        ]
    # Counting stops one past the cap: that one says there are more.
    count_sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM listing l WHERE {' AND '.join(where)}"
        f" LIMIT {int(count_cap) + 1}) AS capped"
    )
    count_args = list(p.values)

    key, descending = _sort_key(sort, text_query, distance)
    if after:
        try:
            after_key, after_id = decode_cursor(after, sort)
        except InvalidInput:
            await _refuse_unknown_currency(database, search)  # the filter is refused first
            raise
        where.append(f"({key}, l.id) {'<' if descending else '>'} ({p(after_key)}, {p(after_id)})")
    direction = "DESC" if descending else "ASC"
    # The count is its own statement: a count(*) OVER () window would make PostgreSQL read
    # and sort every match before the LIMIT (7x slower a page for a big city, measured).
    ranked = (
        f" WHERE {' AND '.join(where)}"
        f" ORDER BY sort_key {direction}, l.id {direction} LIMIT {p(first + 1)}"
    )
    # The page's ids and sort keys come first, then only their rows are read, so the sort
    # carries two columns per match, not every column of the row. Near a point every filter
    # and sort column is in ix_listing_location, and the newest of a place are in
    # ix_listing_newest with their words: there the ids come from the index alone (a tenth of
    # the buffers, or less). Elsewhere the matches are read anyway, and sorting the narrow
    # rows cut PostgreSQL's execution time of the bench mix's first pages by 8% at 100,000
    # listings (EXPLAIN ANALYZE, median of 15), and changed nothing at 5,000.
    page_sql = (
        f"SELECT {_listing_select(columns)}{_HOST_SELECT if with_hosts else ''}"
        f"{_PHOTOS_SELECT if with_photos else ''}, top.sort_key"
        f" FROM (SELECT l.id, {key} AS sort_key FROM listing l{ranked}) AS top"
        f" JOIN listing l ON l.id = top.id{_HOST_JOIN if with_hosts else ''}"
        f" ORDER BY top.sort_key {direction}, top.id {direction}"
    )
    if not with_total:
        records = await fetch(database, page_sql, *p.values)
        if not records:
            await _refuse_unknown_currency(database, search)
        return _page(records, first, sort, with_hosts=with_hosts, with_photos=with_photos)
    records, [(counted,)] = await asyncio.gather(
        fetch(database, page_sql, *p.values), fetch(database, count_sql, *count_args)
    )
    if not records:
        await _refuse_unknown_currency(database, search)
    page = _page(
        records,
        first,
        sort,
        min(counted, count_cap),
        with_hosts=with_hosts,
        with_photos=with_photos,
    )
    page.total_count_is_exact = counted <= count_cap
    return page


@lru_cache(maxsize=64)
def _listing_select(columns: frozenset[str] | None) -> str:
    """The select list of listing rows with only ``columns`` read (and the id), the others
    NULL, in ``ListingRow``'s order; all of them without ``columns``."""
    if columns is None:
        return LISTING_SELECT
    return ", ".join(
        f"l.{name}" if name in columns or name == "id" else f"NULL AS {name}"
        for name in ListingRow._fields
    )


def _filters_price(search: SearchFilter) -> bool:
    return search.min_price is not None or search.max_price is not None


async def _refuse_unknown_currency(database: Database, search: SearchFilter) -> None:
    """BAD_USER_INPUT when the search's prices are in a currency Roost has no rate for."""
    if _filters_price(search) and await usd_per_unit(database, search.currency) is None:
        raise InvalidInput.field("filter.currency", "is not a currency Roost prices in")


class PageCursors:
    """The cursors of a page's rows, each packed only when read: a search page shows one."""

    __slots__ = ("_records", "_sort")

    def __init__(self, records: list[Record], sort: Sort) -> None:
        self._records = records
        self._sort = sort

    def __getitem__(self, index: int) -> str:
        record = self._records[index]
        return encode_cursor(self._sort, record["sort_key"], record["id"])

    def packer(self, index: int) -> Callable[[], str]:
        """What packs the cursor of row ``index`` when called."""
        return partial(self.__getitem__, index)


# A page's hosts, read with its listings: a statement less than loading them by id, as the
# dataloader would (a search page's twenty hosts cost it a sixth of its instructions that way).
# The same rows as db.loaders.USERS_BY_ID's, named apart from the listing's columns.
_HOST_SELECT = ", " + ", ".join(
    f"{'a.thumbnail_key' if name == 'avatar_thumbnail_key' else f'u.{name}'} AS host__{name}"
    for name in UserRow._fields
)
_HOST_JOIN = (
    " LEFT JOIN user_account u ON u.id = l.host_id LEFT JOIN upload a ON a.id = u.avatar_upload_id"
)
_LISTING_WIDTH = len(ListingRow._fields)
_HOST_END = _LISTING_WIDTH + len(UserRow._fields)
# And its photos, in their order, as db.loaders.PHOTOS_BY_LISTING reads them: as JSON text,
# which asyncpg and orjson decode faster than an array of rows.
_PHOTOS_SELECT = (
    ", (SELECT json_agg(json_build_array(f.id, f.caption, u.storage_key, u.width, u.height)"
    " ORDER BY f.position) FROM listing_photo f JOIN upload u ON u.id = f.upload_id"
    " WHERE f.listing_id = l.id)::text AS photos__rows"
)


def _page(
    records: list[Record],
    first: int,
    sort: Sort,
    total: int | None = None,
    *,
    with_hosts: bool = False,
    with_photos: bool = False,
) -> SearchPage:
    """The page of ``first`` rows of ``records``: listing columns, the host's with
    ``with_hosts``, the photos with ``with_photos``, then ``sort_key``."""
    page = records[:first]
    hosts = photos = None
    if with_hosts:
        hosts = [
            UserRow._make(record[_LISTING_WIDTH:_HOST_END])
            if record["host__id"] is not None
            else None
            for record in page
        ]
    if with_photos:
        photos = [_photo_rows(record["id"], record["photos__rows"]) for record in page]
    return SearchPage(
        rows=[ListingRow._make(record[:_LISTING_WIDTH]) for record in page],
        cursors=PageCursors(page, sort),
        has_next_page=len(records) > first,
        total_count=total,
        hosts=hosts,
        photos=photos,
    )


def _photo_rows(listing_id: int, text: str | None) -> list[PhotoRow]:
    if text is None:
        return []
    return [
        PhotoRow(photo_id, listing_id, caption, storage_key, width, height)
        for photo_id, caption, storage_key, width, height in orjson.loads(text)
    ]


def _of_host(p: Parameters, host_id: int) -> list[str]:
    """The conditions of a host's own listings, drafts and unlisted ones too."""
    return [f"l.host_id = {p(host_id)}", "l.deleted_at IS NULL"]


async def listings_of_host(
    database: Database, *, host_id: int, first: int = 20, after: str | None = None
) -> SearchPage:
    """A host's own listings, drafts and unlisted ones too, newest first."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    p = Parameters()
    where = _of_host(p, host_id)
    if after:
        after_key, after_id = decode_cursor(after, Sort.NEWEST)
        where.append(f"(l.created_at, l.id) < ({p(after_key)}, {p(after_id)})")
    records = await fetch(
        database,
        f"SELECT {LISTING_SELECT}, l.created_at AS sort_key FROM listing l"
        f" WHERE {' AND '.join(where)} ORDER BY l.created_at DESC, l.id DESC"
        f" LIMIT {p(first + 1)}",
        *p.values,
    )
    return _page(records, first, Sort.NEWEST)


async def count_listings_of_host(database: Database, *, host_id: int) -> int:
    """How many listings ``listings_of_host`` pages through."""
    p = Parameters()
    rows = await fetch(
        database,
        f"SELECT count(*) FROM listing l WHERE {' AND '.join(_of_host(p, host_id))}",
        *p.values,
    )
    count: int = rows[0][0]
    return count
