"""Every listing, whatever its status, a page at a time: what admins look through (the public
search, services/search.py, sees published listings only)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Listing, User
from db.states import ListingModeration, ListingStatus
from services import cursors
from services.admin_users import search_pattern
from services.errors import InvalidInput, NotFound

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class ListingSummary:
    id: int
    host_id: int
    host_email: str
    title: str
    city: str
    country: str
    status: str
    moderation: str
    moderation_reason: str | None
    currency: str
    nightly_price_minor: int
    deleted: bool
    created_at: datetime


@dataclass(frozen=True)
class ListingPage:
    listings: list[ListingSummary]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


_COLUMNS = (
    Listing.id,
    Listing.host_id,
    User.email,
    Listing.title,
    Listing.city,
    Listing.country,
    Listing.status,
    Listing.moderation,
    Listing.moderation_reason,
    Listing.currency,
    Listing.nightly_price_minor,
    Listing.deleted_at.is_not(None),
    Listing.created_at,
)


async def search(
    session: AsyncSession,
    *,
    text: str | None = None,
    status: ListingStatus | None = None,
    moderation: ListingModeration | None = None,
    host_id: int | None = None,
    first: int = 20,
    after: str | None = None,
) -> ListingPage:
    """Listings whose title or city holds ``text`` (any case), of a status, in a moderation
    state, of a host, newest first; deleted ones included, marked."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions: list[ColumnElement[bool]] = []
    if text is not None:
        pattern = search_pattern(text)
        conditions.append(or_(Listing.title.ilike(pattern), Listing.city.ilike(pattern)))
    if status is not None:
        conditions.append(Listing.status == status)
    if moderation is not None:
        conditions.append(Listing.moderation == moderation)
    if host_id is not None:
        conditions.append(Listing.host_id == host_id)
    query = select(*_COLUMNS).join(User, User.id == Listing.host_id).where(*conditions)
    key = (Listing.created_at, Listing.id)
    if after:
        query = query.where(tuple_(*key) < cursors.unpack_moment(after))
    rows = (await session.execute(query.order_by(*(c.desc() for c in key)).limit(first + 1))).all()
    page = [ListingSummary(*list(row)) for row in rows[:first]]
    return ListingPage(
        page,
        [cursors.pack_moment(listing.created_at, listing.id) for listing in page],
        len(rows) > first,
        select(func.count()).select_from(Listing).where(*conditions),
    )


async def summary(session: AsyncSession, listing_id: int) -> ListingSummary:
    row = (
        await session.execute(
            select(*_COLUMNS).join(User, User.id == Listing.host_id).where(Listing.id == listing_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such listing.")
    return ListingSummary(*list(row))
