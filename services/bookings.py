"""Bookings: the rules of a stay's life (quote, book, confirm, change, cancel, complete).

Money is not moved here: services/checkout.py joins these rules to services/payments.py.
Every writer of a listing's calendar locks the listing row first, so racing writers queue
instead of deadlocking on the no-double-booking constraint; locks are then taken booking
before payment. Status changes go through ``_move``, the one place that knows which
transitions exist, and each writes its event to the outbox in the same transaction.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.rules import can_see_booking
from db.calendar import nights_taken
from db.database import sqlstate
from db.models import Booking, Listing, NightPrice
from db.rows import Actor, BookingRow, ListingRow
from db.states import ACTIVE_BOOKING, BookingStatus, ListingModeration, ListingStatus, Party
from services.cancellation import refund_on_cancel
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.events import (
    BookingCanceled,
    BookingCompleted,
    BookingConfirmed,
    BookingCreated,
    BookingModified,
    BookingRequested,
    emit,
)
from services.pricing import FeePolicy, Price, price_stay
from services.stays import stay_bounds
from services.validation import FieldErrors, has_control_characters

_NEXT: dict[str, tuple[BookingStatus, ...]] = {
    BookingStatus.PENDING: (BookingStatus.CONFIRMED, BookingStatus.CANCELED),
    BookingStatus.CONFIRMED: (BookingStatus.CANCELED, BookingStatus.COMPLETED),
}
_EXCLUSION_VIOLATION = "23P01"
MAX_MESSAGE = 2_000
MAX_REASON = 500
TAKEN = "Some of these nights are not available."
# The class of the transaction-level advisory locks that serialize one guest's new holds
# (the two-key form: a key space apart from the one-key lock of migrations).
_GUEST_HOLDS_LOCK = 0x486F6C64


@dataclass(frozen=True)
class BookingRules:
    """The platform's settings for bookings."""

    fees: FeePolicy = field(default_factory=FeePolicy)
    payment_window: timedelta = timedelta(minutes=15)
    host_response_window: timedelta = timedelta(hours=24)
    max_days_ahead: int = 365
    max_pending_per_guest: int = 5


@dataclass(frozen=True)
class Stay:
    check_in: date
    check_out: date
    guests: int

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days


def _move(booking: Booking, status: BookingStatus) -> None:
    """The only place a booking changes status."""
    if status not in _NEXT.get(booking.status, ()):
        raise Conflict(f"A {booking.status.lower()} booking cannot become {status.lower()}.")
    booking.status = status


def check_stay(listing: Listing, stay: Stay, *, now: datetime, rules: BookingRules) -> None:
    errors = FieldErrors()
    today = now.astimezone(ZoneInfo(listing.time_zone)).date()
    if stay.check_in < today:
        errors.check("checkIn", "must be today or later where the listing is")
    elif stay.check_in > today + timedelta(days=rules.max_days_ahead):
        errors.check("checkIn", f"must be at most {rules.max_days_ahead} days ahead")
    if stay.check_out <= stay.check_in:
        errors.check("checkOut", "must be after checkIn")
    elif stay.nights < listing.min_nights:
        errors.check("checkOut", f"this place takes stays of at least {listing.min_nights} nights")
    elif listing.max_nights is not None and stay.nights > listing.max_nights:
        errors.check("checkOut", f"this place takes stays of at most {listing.max_nights} nights")
    if not 1 <= stay.guests <= listing.max_guests:
        errors.check("guests", f"must be between 1 and {listing.max_guests}")
    if errors:
        raise InvalidInput(fields=errors)


def check_text(value: str | None, name: str, limit: int) -> str | None:
    text = (value or "").strip()
    if len(text) > limit:
        raise InvalidInput.field(name, f"must be at most {limit} characters long")
    if has_control_characters(text, allow_newlines=True):
        raise InvalidInput.field(name, "must not contain control characters")
    return text or None


_BOOKABLE = (
    Listing.status == ListingStatus.PUBLISHED,
    Listing.deleted_at.is_(None),
    Listing.moderation == ListingModeration.APPROVED,
)


async def _bookable_listing(session: AsyncSession, listing_id: int) -> Listing:
    listing = await session.scalar(select(Listing).where(Listing.id == listing_id, *_BOOKABLE))
    if listing is None:
        raise NotFound("No such listing.")
    return listing


async def lock_calendar(session: AsyncSession, listing_id: int, *, bookable: bool) -> None:
    """Every writer of a listing's calendar takes this lock first, so writers queue."""
    query = select(Listing.id).where(Listing.id == listing_id)
    if bookable:
        query = query.where(*_BOOKABLE)
    if await session.scalar(query.with_for_update()) is None:
        raise NotFound("No such listing.")


async def _lock_guest_holds(session: AsyncSession, guest_id: int) -> None:
    """Until the transaction ends, the guest's other new holds wait: counting them and adding
    one cannot interleave. Ids past 2**31 fold onto smaller ones, which only makes those
    guests queue together."""
    key = (guest_id + 2**31) % 2**32 - 2**31
    await session.execute(select(func.pg_advisory_xact_lock(_GUEST_HOLDS_LOCK, key)))


async def refuse_taken(
    session: AsyncSession, listing_id: int, stay: Stay, *, except_booking: int | None = None
) -> None:
    taken = nights_taken(listing_id, stay.check_in, stay.check_out, except_booking=except_booking)
    if await session.scalar(select(taken)):
        raise Conflict(TAKEN)


async def price_of_stay(
    session: AsyncSession, listing: Listing, stay: Stay, rules: BookingRules
) -> Price:
    overrides = await session.execute(
        select(NightPrice.night, NightPrice.price_minor).where(
            NightPrice.listing_id == listing.id,
            NightPrice.night >= stay.check_in,
            NightPrice.night < stay.check_out,
        )
    )
    return price_stay(
        check_in=stay.check_in,
        check_out=stay.check_out,
        nightly_price=listing.nightly_price_minor,
        night_overrides=dict(overrides.all()),
        cleaning_fee=listing.cleaning_fee_minor,
        currency=listing.currency,
        country=listing.country,
        fees=rules.fees,
    )


def set_stay(booking: Booking, listing: Listing, stay: Stay, price: Price) -> None:
    booking.check_in = stay.check_in
    booking.check_out = stay.check_out
    booking.guests = stay.guests
    booking.currency = price.currency
    booking.night_prices_minor = list(price.night_prices)
    booking.cleaning_fee_minor = price.cleaning_fee
    booking.service_fee_minor = price.service_fee
    booking.taxes_minor = price.taxes
    booking.total_minor = price.total
    booking.starts_at, booking.ends_at = stay_bounds(
        stay.check_in,
        stay.check_out,
        time_zone=listing.time_zone,
        check_in_time=listing.check_in_time,
        check_out_time=listing.check_out_time,
    )


async def flush_stay(session: AsyncSession) -> None:
    """Writes the stay; the database's constraint has the last word on double bookings."""
    try:
        await session.flush()
    except IntegrityError as error:
        if sqlstate(error) == _EXCLUSION_VIOLATION:
            raise Conflict(TAKEN) from None
        raise


# Quote and book.


async def quote(
    session: AsyncSession, *, listing_id: int, stay: Stay, rules: BookingRules, now: datetime
) -> Price:
    """What the stay would cost now; CONFLICT when a night is taken."""
    listing = await _bookable_listing(session, listing_id)
    check_stay(listing, stay, now=now, rules=rules)
    await refuse_taken(session, listing.id, stay)
    return await price_of_stay(session, listing, stay, rules)


async def create_booking(
    session: AsyncSession,
    *,
    guest: Actor,
    listing_id: int,
    stay: Stay,
    message: str | None,
    rules: BookingRules,
    now: datetime,
) -> Booking:
    """A PENDING booking holding its nights until it is paid, or until the hold lapses."""
    listing = await _bookable_listing(session, listing_id)
    if listing.host_id == guest.id:
        raise Forbidden("You cannot book your own listing.")
    check_stay(listing, stay, now=now, rules=rules)
    message = check_text(message, "message", MAX_MESSAGE)
    # The cap is counted under the guest's lock, in the transaction that inserts, so racing
    # requests of one guest count one after another. Deadlock-free: this transaction holds
    # no row lock yet (only plain reads so far), only create_booking takes this lock, and
    # every lock taken after it (the listing row, then the search_generation shard its insert
    # raises) is one that other
    # writers (modify, cancel, answer, pay, expire_due, listing changes) take without ever
    # waiting for this one. So no waiter on it can hold what its holder waits for.
    await _lock_guest_holds(session, guest.id)
    holding = await session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(
            Booking.guest_id == guest.id,
            Booking.status == BookingStatus.PENDING,
            Booking.expires_at > now,
        )
    )
    if (holding or 0) >= rules.max_pending_per_guest:
        raise Conflict("You have too many bookings waiting; pay for or cancel one first.")
    price = await price_of_stay(session, listing, stay, rules)
    # Only now the lock: guests racing for the same nights queue here, each for as short a
    # time as the check of the nights and the insert take.
    await lock_calendar(session, listing_id, bookable=True)
    await refuse_taken(session, listing.id, stay)
    booking = Booking(
        listing_id=listing.id,
        guest_id=guest.id,
        status=BookingStatus.PENDING,
        message=message,
        cancellation_policy=listing.cancellation_policy,
        instant_book=listing.instant_book,
        expires_at=now + rules.payment_window,
        created_at=now,
    )
    set_stay(booking, listing, stay, price)
    session.add(booking)
    await flush_stay(session)
    emit(session, BookingCreated(booking.id), now=now)
    return booking


# Who may see and change a booking.


async def lock_booking(session: AsyncSession, booking_id: int) -> tuple[Booking, Listing] | None:
    row = (
        await session.execute(
            select(Booking, Listing)
            .join(Listing, Listing.id == Booking.listing_id)
            .where(Booking.id == booking_id)
            .with_for_update(of=Booking)
            .execution_options(populate_existing=True)
        )
    ).first()
    return (row.Booking, row.Listing) if row else None


async def booking_for_change(
    session: AsyncSession, *, actor: Actor, booking_id: int
) -> tuple[Booking, Listing]:
    """The booking, locked, when ``actor`` is its guest, its host or an admin."""
    found = await lock_booking(session, booking_id)
    if found is None or not can_see_booking(
        actor, guest_id=found[0].guest_id, host_id=found[1].host_id
    ):
        raise NotFound("No such booking.")
    return found


def role_of(actor: Actor, booking: Booking | BookingRow, listing: Listing | ListingRow) -> Party:
    if actor.id == booking.guest_id:
        return Party.GUEST
    if actor.id == listing.host_id:
        return Party.HOST
    return Party.ADMIN


# Confirm, change, cancel.


def confirm(session: AsyncSession, booking: Booking, now: datetime) -> None:
    _move(booking, BookingStatus.CONFIRMED)
    booking.expires_at = None
    emit(session, BookingConfirmed(booking.id), now=now)


def refuse_lapsed(booking: Booking, now: datetime) -> None:
    """A hold past its time is over, whether or not a worker has released it yet."""
    if (
        booking.status != BookingStatus.PENDING
        or booking.expires_at is None
        or booking.expires_at <= now
    ):
        raise Conflict("This booking is no longer waiting for a payment; book again.")


def request_to_host(
    session: AsyncSession, booking: Booking, *, now: datetime, rules: BookingRules
) -> None:
    """A paid request goes to the host, who has ``rules.host_response_window`` to answer."""
    booking.expires_at = now + rules.host_response_window
    emit(session, BookingRequested(booking.id), now=now)


def check_changeable(booking: Booking, listing: Listing, *, actor: Actor, now: datetime) -> None:
    if booking.guest_id != actor.id:
        raise Forbidden("Only the guest changes a booking.")
    if booking.status not in ACTIVE_BOOKING:
        raise Conflict(f"A {booking.status.lower()} booking cannot be changed.")
    if booking.status == BookingStatus.PENDING and (
        booking.expires_at is None or booking.expires_at <= now
    ):
        # A lapsed hold no longer counts against the guest's cap on holds: changing it must
        # not open it again (a request gets a new payment window), past that cap.
        raise Conflict("This booking's hold has lapsed; book again.")
    if booking.starts_at <= now:
        raise Conflict("A stay that has begun cannot be changed.")
    if listing.deleted_at is not None:
        raise Conflict("This listing is no longer available.")


async def change_stay(
    session: AsyncSession,
    booking: Booking,
    listing: Listing,
    stay: Stay,
    price: Price,
    *,
    now: datetime,
) -> None:
    """The booking takes the new stay at ``price``. The caller holds the calendar's lock and
    checked the nights."""
    difference = price.total - booking.total_minor
    set_stay(booking, listing, stay, price)
    await flush_stay(session)
    emit(session, BookingModified(booking.id, stay.check_in, stay.check_out, difference), now=now)


def night_starts(booking: Booking | BookingRow, listing: Listing | ListingRow) -> list[datetime]:
    """When each night of the stay begins: the check-in time, kept by the booking, each day."""
    zone = ZoneInfo(listing.time_zone)
    arrival = booking.starts_at.astimezone(zone).time()
    return [
        datetime.combine(booking.check_in + timedelta(days=offset), arrival, zone)
        for offset in range(len(booking.night_prices_minor))
    ]


def refund_due(
    booking: Booking | BookingRow,
    listing: Listing | ListingRow,
    *,
    paid: int,
    by: Party,
    now: datetime,
) -> int:
    """What cancelling now gives back of ``paid``."""
    return refund_on_cancel(
        booking.cancellation_policy,
        paid=paid,
        night_prices=booking.night_prices_minor,
        night_starts=night_starts(booking, listing),
        booked_at=booking.created_at,
        now=now,
        by_host=by != Party.GUEST,
    )


async def cancel(
    session: AsyncSession,
    booking: Booking,
    *,
    by: Party,
    reason: str | None,
    refund: int,
    now: datetime,
) -> None:
    """The booking lets its nights go; ``refund`` is what its payment gives back."""
    _move(booking, BookingStatus.CANCELED)
    booking.canceled_at = now
    booking.canceled_by = by
    booking.cancel_reason = reason
    booking.refund_minor = refund
    booking.expires_at = None
    emit(session, BookingCanceled(booking.id, by=by, refund_minor=refund), now=now)


# The clock.


async def complete_due(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """CONFIRMED stays past their check-out time, where the listing is, become COMPLETED."""
    bookings = (
        await session.scalars(
            select(Booking)
            .where(Booking.status == BookingStatus.CONFIRMED, Booking.ends_at <= now)
            .order_by(Booking.ends_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for booking in bookings:
        _move(booking, BookingStatus.COMPLETED)
        emit(session, BookingCompleted(booking.id), now=now)
    return len(bookings)
