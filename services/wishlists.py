"""Wishlists: a user's named lists of saved places, private unless shared by a link.

Rules:
- Names are 1 to ``MAX_NAME`` characters of plain text (surrounding spaces trimmed, no control
  characters). A user keeps at most ``MAX_WISHLISTS`` lists and ``MAX_SAVED_PLACES`` saved
  places over all of them; both caps are counted under a lock on the user's row, so racing
  requests of one user count one after another.
- Saving a place a list already holds answers the list unchanged (idempotent), and so does
  removing one it does not hold. Only a place the user may see can be saved.
- Someone else's list is as good as missing: NOT_FOUND, never FORBIDDEN.
- Sharing gives a random token (only its SHA-256 is stored); sharing again replaces it, so an
  old link stops working, and unsharing forgets it. Whoever holds the token reads the list's
  name, dates and places, and its owner's first name: nothing else of the owner.
- With dates on a list, each saved place says whether it can be booked for them and what the
  stay would cost: one statement for a page, whatever its size. A place that is deleted,
  unlisted, suspended, flagged or waiting for review is shown as unavailable, not as an error.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from auth import rules as access
from db.calendar import taken_night_sql
from db.database import Database
from db.loaders import LISTING_SELECT
from db.models import Listing, User, Wishlist, WishlistItem
from db.raw import Parameters, fetch
from db.rows import Actor, ListingRow, WishlistRow
from db.states import ListingModeration, ListingStatus
from services import cursors
from services.errors import Conflict, InvalidInput, NotFound
from services.pricing import FeePolicy, Price, price_stay
from services.validation import has_control_characters

MAX_NAME = 100
MAX_WISHLISTS = 100
MAX_SAVED_PLACES = 1_000
MAX_PAGE_SIZE = 100
MAX_GUESTS = 50
MAX_NIGHTS = 365
GONE = "No such wishlist."


@dataclass(frozen=True)
class StayChange:
    """New dates and guests for a list; all None clears them."""

    check_in: date | None
    check_out: date | None
    guests: int | None


@dataclass(frozen=True)
class WishlistPage:
    wishlists: list[WishlistRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


@dataclass(frozen=True)
class SavedPlace:
    listing: ListingRow
    saved_at: datetime
    available: bool
    """Bookable now (and, with dates on the list, free and allowed for them)."""
    price: Price | None
    """What the list's stay would cost here; None without dates or when unavailable."""


@dataclass(frozen=True)
class SavedPlacePage:
    places: list[SavedPlace]
    cursors: list[str]
    has_next_page: bool


_COLUMNS = (
    Wishlist.id,
    Wishlist.user_id,
    Wishlist.name,
    Wishlist.check_in,
    Wishlist.check_out,
    Wishlist.guests,
    Wishlist.share_token_hash.is_not(None),
    Wishlist.created_at,
)


def check_name(name: str) -> str:
    text = name.strip()
    if not 1 <= len(text) <= MAX_NAME:
        raise InvalidInput.field("name", f"must be between 1 and {MAX_NAME} characters long")
    if has_control_characters(text):
        raise InvalidInput.field("name", "must not contain control characters")
    return text


def check_stay(stay: StayChange) -> StayChange:
    if stay.check_in is None and stay.check_out is None:
        if stay.guests is not None:
            raise InvalidInput.field("guests", "give checkIn and checkOut with guests")
        return stay
    if stay.check_in is None or stay.check_out is None:
        raise InvalidInput.field("checkOut", "give both checkIn and checkOut, or neither")
    if stay.check_out <= stay.check_in:
        raise InvalidInput.field("checkOut", "must be after checkIn")
    if (stay.check_out - stay.check_in).days > MAX_NIGHTS:
        raise InvalidInput.field("checkOut", f"a stay is at most {MAX_NIGHTS} nights")
    if stay.guests is not None and not 1 <= stay.guests <= MAX_GUESTS:
        raise InvalidInput.field("guests", f"must be between 1 and {MAX_GUESTS}")
    return stay


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _lock_user(session: AsyncSession, user_id: int) -> None:
    """Serializes one user's additions, so a cap is counted by one request at a time. NO KEY
    UPDATE: rows elsewhere that merely refer to the user (their bookings, notifications) are
    not held up."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def _owned(session: AsyncSession, user_id: int, wishlist_id: int) -> WishlistRow:
    row = (
        await session.execute(
            select(*_COLUMNS).where(Wishlist.id == wishlist_id, Wishlist.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound(GONE)
    return WishlistRow._make(row)


async def create_wishlist(
    session: AsyncSession, *, user_id: int, name: str, now: datetime
) -> WishlistRow:
    name = check_name(name)
    await _lock_user(session, user_id)
    held = await session.scalar(
        select(func.count()).select_from(Wishlist).where(Wishlist.user_id == user_id)
    )
    if (held or 0) >= MAX_WISHLISTS:
        raise Conflict(f"You have {MAX_WISHLISTS} wishlists, the most one can keep.")
    wishlist_id = await session.scalar(
        insert(Wishlist).values(user_id=user_id, name=name, created_at=now).returning(Wishlist.id)
    )
    return await _owned(session, user_id, int(wishlist_id or 0))


async def update_wishlist(
    session: AsyncSession,
    *,
    user_id: int,
    wishlist_id: int,
    name: str | None = None,
    stay: StayChange | None = None,
) -> WishlistRow:
    """Renames the list and/or sets its stay; None leaves that part as it is."""
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = check_name(name)
    if stay is not None:
        stay = check_stay(stay)
        values.update(check_in=stay.check_in, check_out=stay.check_out, guests=stay.guests)
    await _owned(session, user_id, wishlist_id)
    if values:
        await session.execute(update(Wishlist).where(Wishlist.id == wishlist_id).values(values))
    return await _owned(session, user_id, wishlist_id)


async def delete_wishlist(session: AsyncSession, *, user_id: int, wishlist_id: int) -> None:
    deleted = await session.scalar(
        delete(Wishlist)
        .where(Wishlist.id == wishlist_id, Wishlist.user_id == user_id)
        .returning(Wishlist.id)
    )
    if deleted is None:
        raise NotFound(GONE)


async def add_to_wishlist(
    session: AsyncSession, *, user: Actor, wishlist_id: int, listing_id: int, now: datetime
) -> WishlistRow:
    """Saves the place in the list; a place already there leaves the list as it is."""
    await _lock_user(session, user.id)
    wishlist = await _owned(session, user.id, wishlist_id)
    listing = (
        await session.execute(
            select(Listing.host_id, Listing.status, Listing.deleted_at, Listing.moderation).where(
                Listing.id == listing_id
            )
        )
    ).first()
    if listing is None or not access.can_see_listing(
        user,
        host_id=listing.host_id,
        status=listing.status,
        deleted=listing.deleted_at is not None,
        moderation=listing.moderation,
    ):
        raise NotFound("No such listing.")
    already = await session.scalar(
        select(func.count())
        .select_from(WishlistItem)
        .where(WishlistItem.wishlist_id == wishlist_id, WishlistItem.listing_id == listing_id)
    )
    if already:
        return wishlist
    saved = await session.scalar(
        select(func.count()).select_from(WishlistItem).where(WishlistItem.user_id == user.id)
    )
    if (saved or 0) >= MAX_SAVED_PLACES:
        raise Conflict(
            f"You have saved {MAX_SAVED_PLACES} places, the most one can keep; "
            "remove one to save another."
        )
    await session.execute(
        insert(WishlistItem).values(
            wishlist_id=wishlist_id, listing_id=listing_id, user_id=user.id, saved_at=now
        )
    )
    return wishlist


async def remove_from_wishlist(
    session: AsyncSession, *, user_id: int, wishlist_id: int, listing_id: int
) -> WishlistRow:
    """Takes the place out of the list; a place not in it leaves the list as it is."""
    wishlist = await _owned(session, user_id, wishlist_id)
    await session.execute(
        delete(WishlistItem).where(
            WishlistItem.wishlist_id == wishlist_id, WishlistItem.listing_id == listing_id
        )
    )
    return wishlist


async def share_wishlist(
    session: AsyncSession, *, user_id: int, wishlist_id: int
) -> tuple[WishlistRow, str]:
    """A new read-only token for the list; any earlier one stops working."""
    await _owned(session, user_id, wishlist_id)
    token = secrets.token_urlsafe(32)
    await session.execute(
        update(Wishlist)
        .where(Wishlist.id == wishlist_id)
        .values(share_token_hash=hash_token(token))
    )
    return await _owned(session, user_id, wishlist_id), token


async def unshare_wishlist(session: AsyncSession, *, user_id: int, wishlist_id: int) -> WishlistRow:
    await _owned(session, user_id, wishlist_id)
    await session.execute(
        update(Wishlist).where(Wishlist.id == wishlist_id).values(share_token_hash=None)
    )
    return await _owned(session, user_id, wishlist_id)


# Reading.


async def list_wishlists(
    session: AsyncSession, *, user_id: int, first: int = 20, after: str | None = None
) -> WishlistPage:
    """A page of the user's lists, newest first."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    key = (Wishlist.created_at, Wishlist.id)
    query = select(*_COLUMNS).where(Wishlist.user_id == user_id)
    if after:
        query = query.where(tuple_(*key) < cursors.unpack_moment(after))
    rows = (await session.execute(query.order_by(*(c.desc() for c in key)).limit(first + 1))).all()
    page = [WishlistRow._make(row) for row in rows[:first]]
    return WishlistPage(
        page,
        [cursors.pack_moment(row.created_at, row.id) for row in page],
        len(rows) > first,
        select(func.count()).select_from(Wishlist).where(Wishlist.user_id == user_id),
    )


async def of_user(session: AsyncSession, *, user_id: int, ids: list[int]) -> dict[int, WishlistRow]:
    """Those of ``ids`` that are the user's, by id: another's is as good as missing."""
    rows = await session.execute(
        select(*_COLUMNS).where(Wishlist.id.in_(ids), Wishlist.user_id == user_id)
    )
    return {row.id: row for row in map(WishlistRow._make, rows)}


async def shared(session: AsyncSession, *, token: str) -> tuple[WishlistRow, str] | None:
    """The list a share token opens, and its owner's first name; None for any other token."""
    if not 1 <= len(token) <= 200:
        return None
    row = (
        await session.execute(
            select(*_COLUMNS, User.first_name)
            .join(User, User.id == Wishlist.user_id)
            .where(Wishlist.share_token_hash == hash_token(token))
        )
    ).first()
    if row is None:
        return None
    return WishlistRow._make(row[:-1]), row[-1]


def count_items(wishlist_id: int) -> Select[int]:
    return (
        select(func.count())
        .select_from(WishlistItem)
        .where(WishlistItem.wishlist_id == wishlist_id)
    )


_OPEN = (
    f"(l.status = '{ListingStatus.PUBLISHED}' AND l.deleted_at IS NULL"
    f" AND l.moderation = '{ListingModeration.APPROVED}')"
)
_LISTING_FIELDS = len(ListingRow._fields)


async def saved_places(
    database: Database,
    *,
    wishlist: WishlistRow,
    first: int = 20,
    after: str | None = None,
    fees: FeePolicy,
    now: datetime,
    max_days_ahead: int,
) -> SavedPlacePage:
    """A page of the list's places, newest saved first, each with whether it can be booked
    (for the list's stay, when it has one) and the stay's price: one statement."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    p = Parameters()
    where = [f"i.wishlist_id = {p(wishlist.id)}"]
    selected = [LISTING_SELECT, "i.saved_at", f"{_OPEN} AS open"]
    check_in, check_out = wishlist.check_in, wishlist.check_out
    if check_in is not None and check_out is not None:
        start, end = p(check_in), p(check_out)
        nights = p((check_out - check_in).days)
        # Today where the listing is, as bookings count it (services/bookings.check_stay).
        today = f"({p(now)}::timestamptz AT TIME ZONE l.time_zone)::date"
        overrides = (
            f"FROM night_price n WHERE n.listing_id = l.id"
            f" AND n.night >= {start} AND n.night < {end}"
        )
        selected += [
            f"(l.min_nights <= {nights} AND (l.max_nights IS NULL OR l.max_nights >= {nights})"
            f" AND l.max_guests >= {p(wishlist.guests or 1)}"
            f" AND {start}::date >= {today}"
            f" AND {start}::date <= {today} + {p(max_days_ahead)}::int"
            # The nights search reads too (listing_calendar): free here is free there.
            f" AND NOT {taken_night_sql('l.id', start, end)}) AS free",
            f"ARRAY(SELECT n.night {overrides} ORDER BY n.night) AS override_nights",
            f"ARRAY(SELECT n.price_minor {overrides} ORDER BY n.night) AS override_prices",
        ]
    if after:
        moment, listing_id = cursors.unpack_moment(after)
        where.append(f"(i.saved_at, i.listing_id) < ({p(moment)}, {p(listing_id)})")
    records = await fetch(
        database,
        f"SELECT {', '.join(selected)}"
        f" FROM wishlist_item i JOIN listing l ON l.id = i.listing_id"
        f" WHERE {' AND '.join(where)}"
        f" ORDER BY i.saved_at DESC, i.listing_id DESC LIMIT {p(first + 1)}",
        *p.values,
    )
    places = []
    for record in records[:first]:
        listing = ListingRow._make(record[:_LISTING_FIELDS])
        available: bool = record["open"]
        price = None
        if check_in is not None and check_out is not None:
            available = available and record["free"]
            if available:
                price = price_stay(
                    check_in=check_in,
                    check_out=check_out,
                    nightly_price=listing.nightly_price_minor,
                    night_overrides=dict(
                        zip(record["override_nights"], record["override_prices"], strict=True)
                    ),
                    cleaning_fee=listing.cleaning_fee_minor,
                    currency=listing.currency,
                    country=listing.country,
                    fees=fees,
                )
        places.append(SavedPlace(listing, record["saved_at"], available, price))
    return SavedPlacePage(
        places,
        [cursors.pack_moment(place.saved_at, place.listing.id) for place in places],
        len(records) > first,
    )
