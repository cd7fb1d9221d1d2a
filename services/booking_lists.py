"""A guest's trips and a host's reservations, a page at a time."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Booking, Listing
from db.rows import BookingRow
from services import cursors
from services.errors import InvalidInput

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class BookingPage:
    bookings: list[BookingRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


def _encode(booking: BookingRow) -> str:
    return cursors.pack(booking.check_in.isoformat(), booking.id)


def _decode(cursor: str) -> tuple[date, int]:
    problem = "is not a cursor of this list"
    check_in, booking_id = cursors.unpack(cursor, size=2, problem=problem)
    try:
        if not isinstance(booking_id, int):
            raise TypeError
        return date.fromisoformat(check_in), booking_id
    except (ValueError, TypeError):
        raise InvalidInput.field("after", problem) from None


@dataclass(frozen=True)
class BookingFilter:
    status: str | None = None
    listing_id: int | None = None
    start: date | None = None  # stays with a night on or after this date
    end: date | None = None  # stays with a night before this date


async def list_bookings(
    session: AsyncSession,
    *,
    guest_id: int | None = None,
    host_id: int | None = None,
    where: BookingFilter = BookingFilter(),
    first: int = 20,
    after: str | None = None,
    newest_first: bool,
) -> BookingPage:
    """A page of a guest's trips or a host's reservations, with the query counting them all."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    if where.start and where.end and where.end <= where.start:
        raise InvalidInput.field("to", "must be after from")
    conditions = []
    if guest_id is not None:
        conditions.append(Booking.guest_id == guest_id)
    if host_id is not None:
        conditions.append(
            Booking.listing_id.in_(select(Listing.id).where(Listing.host_id == host_id))
        )
    if where.status:
        conditions.append(Booking.status == where.status)
    if where.listing_id is not None:
        conditions.append(Booking.listing_id == where.listing_id)
    if where.start:
        conditions.append(Booking.check_out > where.start)
    if where.end:
        conditions.append(Booking.check_in < where.end)
    query = select(*(getattr(Booking, name) for name in BookingRow._fields)).where(*conditions)
    key = (Booking.check_in, Booking.id)
    if after:
        check_in, booking_id = _decode(after)
        query = query.where(
            tuple_(*key) < (check_in, booking_id)
            if newest_first
            else tuple_(*key) > (check_in, booking_id)
        )
    order = [column.desc() if newest_first else column.asc() for column in key]
    rows = (await session.execute(query.order_by(*order).limit(first + 1))).all()
    page = [BookingRow._make(row) for row in rows[:first]]
    total = select(func.count()).select_from(Booking).where(*conditions)
    return BookingPage(page, [_encode(b) for b in page], len(rows) > first, total)
