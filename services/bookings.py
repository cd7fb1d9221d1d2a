"""Bookings: quote, book, pay, answer, modify, cancel, and the clock moving them along.

Every writer of a listing's calendar locks the listing row first, so racing writers queue
instead of deadlocking on the no-double-booking constraint; locks are then taken booking
before payment. Status changes go through ``_move``, the one place that knows which
transitions exist, and each writes its event to the outbox in the same transaction.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import sqlstate
from db.models import BlockedNight, Booking, Listing, NightPrice, Payment, User
from db.states import (
    ACTIVE_BOOKING,
    CAPTURED_PAYMENT,
    BookingStatus,
    ListingStatus,
    Party,
    PaymentProvider,
    PaymentStatus,
    Role,
)
from services import cursors, payments
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
from services.search_cache import results_changed
from services.stays import stay_bounds
from services.validation import FieldErrors, has_control_characters

ACTIVE = ACTIVE_BOOKING
_NEXT = {
    BookingStatus.PENDING: (BookingStatus.CONFIRMED, BookingStatus.CANCELED),
    BookingStatus.CONFIRMED: (BookingStatus.CANCELED, BookingStatus.COMPLETED),
}
_EXCLUSION_VIOLATION = "23P01"
MAX_MESSAGE = 2_000
MAX_REASON = 500
MAX_PAGE_SIZE = 100
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


def _check_stay(listing: Listing, stay: Stay, *, now: datetime, rules: BookingRules) -> None:
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


def _check_text(value: str | None, name: str, limit: int) -> str | None:
    text = (value or "").strip()
    if len(text) > limit:
        raise InvalidInput.field(name, f"must be at most {limit} characters long")
    if has_control_characters(text, allow_newlines=True):
        raise InvalidInput.field(name, "must not contain control characters")
    return text or None


_BOOKABLE = (Listing.status == ListingStatus.PUBLISHED, Listing.deleted_at.is_(None))


async def _bookable_listing(session: AsyncSession, listing_id: int) -> Listing:
    listing = await session.scalar(select(Listing).where(Listing.id == listing_id, *_BOOKABLE))
    if listing is None:
        raise NotFound("No such listing.")
    return listing


async def _lock_calendar(session: AsyncSession, listing_id: int, *, bookable: bool) -> None:
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


async def _refuse_taken(
    session: AsyncSession, listing_id: int, stay: Stay, *, except_booking: int | None = None
) -> None:
    blocked = select(BlockedNight.night).where(
        BlockedNight.listing_id == listing_id,
        BlockedNight.night >= stay.check_in,
        BlockedNight.night < stay.check_out,
    )
    booked = select(Booking.id).where(
        Booking.listing_id == listing_id,
        Booking.status.in_(ACTIVE),
        Booking.check_in < stay.check_out,
        Booking.check_out > stay.check_in,
    )
    if except_booking is not None:
        booked = booked.where(Booking.id != except_booking)
    if await session.scalar(select(blocked.exists() | booked.exists())):
        raise Conflict(TAKEN)


async def _price(session: AsyncSession, listing: Listing, stay: Stay, rules: BookingRules) -> Price:
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


def _set_stay(booking: Booking, listing: Listing, stay: Stay, price: Price) -> None:
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


def price_of(booking: Booking) -> Price:
    return Price(
        currency=booking.currency,
        night_prices=tuple(booking.night_prices_minor),
        cleaning_fee=booking.cleaning_fee_minor,
        service_fee=booking.service_fee_minor,
        taxes=booking.taxes_minor,
    )


# Quote and book.


async def quote(
    session: AsyncSession, *, listing_id: int, stay: Stay, rules: BookingRules, now: datetime
) -> Price:
    """What the stay would cost now; CONFLICT when a night is taken."""
    listing = await _bookable_listing(session, listing_id)
    _check_stay(listing, stay, now=now, rules=rules)
    await _refuse_taken(session, listing.id, stay)
    return await _price(session, listing, stay, rules)


async def create_booking(
    session: AsyncSession,
    *,
    guest: User,
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
    _check_stay(listing, stay, now=now, rules=rules)
    message = _check_text(message, "message", MAX_MESSAGE)
    # The cap is counted under the guest's lock, in the transaction that inserts, so racing
    # requests of one guest count one after another. Deadlock-free: this transaction holds
    # no row lock yet (only plain reads so far), only create_booking takes this lock, and
    # every lock taken after it (the listing row, then search_generation) is one that other
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
    if holding >= rules.max_pending_per_guest:
        raise Conflict("You have too many bookings waiting; pay for or cancel one first.")
    price = await _price(session, listing, stay, rules)
    # Only now the lock: guests racing for the same nights queue here, each for as short a
    # time as the check of the nights and the insert take.
    await _lock_calendar(session, listing_id, bookable=True)
    await _refuse_taken(session, listing.id, stay)
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
    _set_stay(booking, listing, stay, price)
    session.add(booking)
    await flush_stay(session)
    emit(session, BookingCreated(booking.id), now=now)
    await results_changed(session)
    return booking


# Who may see and change a booking.


async def _lock_booking(session: AsyncSession, booking_id: int) -> tuple[Booking, Listing] | None:
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
    session: AsyncSession, *, actor: User, booking_id: int
) -> tuple[Booking, Listing]:
    """The booking, locked, when ``actor`` is its guest, its host or an admin."""
    found = await _lock_booking(session, booking_id)
    if found is None or not can_see(actor, found[0].guest_id, found[1].host_id):
        raise NotFound("No such booking.")
    return found


def can_see(viewer: User | None, guest_id: int, host_id: int) -> bool:
    return viewer is not None and (viewer.id in (guest_id, host_id) or Role.ADMIN in viewer.roles)


def role_of(actor: User, booking: Booking, listing: Listing) -> Party:
    if actor.id == booking.guest_id:
        return Party.GUEST
    if actor.id == listing.host_id:
        return Party.HOST
    return Party.ADMIN


# Pay, answer, confirm.


def _confirm(session: AsyncSession, booking: Booking, now: datetime) -> None:
    _move(booking, BookingStatus.CONFIRMED)
    booking.expires_at = None
    emit(session, BookingConfirmed(booking.id), now=now)


def _refuse_lapsed(booking: Booking, now: datetime) -> None:
    """A hold past its time is over, whether or not a worker has released it yet."""
    if (
        booking.status != BookingStatus.PENDING
        or booking.expires_at is None
        or booking.expires_at <= now
    ):
        raise Conflict("This booking is no longer waiting for a payment; book again.")


async def start_payment(
    session: AsyncSession,
    *,
    actor: User,
    booking_id: int,
    gateway: payments.PaymentGateway,
    now: datetime,
) -> payments.StartedPayment:
    booking, _ = await booking_for_change(session, actor=actor, booking_id=booking_id)
    if booking.guest_id != actor.id:
        raise Forbidden("Only the guest pays for a booking.")
    _refuse_lapsed(booking, now)
    return await payments.start_payment(session, booking=booking, gateway=gateway)


async def payment_authorized(
    session: AsyncSession,
    booking: Booking,
    payment: Payment,
    *,
    now: datetime,
    rules: BookingRules,
    gateways: payments.Gateways,
) -> None:
    """The guest completed a payment: an instant booking is confirmed (and charged); a request
    goes to the host, who has ``rules.host_response_window`` to answer."""
    _refuse_lapsed(booking, now)
    await payments.authorize(session, payment, now=now)
    if booking.instant_book:
        await payments.capture(session, payment, gateways.get(payment.provider), now=now)
        _confirm(session, booking, now)
    else:
        booking.expires_at = now + rules.host_response_window
        emit(session, BookingRequested(booking.id), now=now)


async def confirm_test_payment(
    session: AsyncSession,
    *,
    actor: User,
    payment_id: int,
    succeed: bool,
    now: datetime,
    rules: BookingRules,
    gateways: payments.Gateways,
) -> Payment:
    """What the TEST provider's checkout does: the guest pays, or the card is declined."""
    booking_id = await session.scalar(select(Payment.booking_id).where(Payment.id == payment_id))
    found = await _lock_booking(session, booking_id) if booking_id is not None else None
    if found is None or found[0].guest_id != actor.id:
        raise NotFound("No such payment.")
    booking = found[0]
    payment = await session.scalar(
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if payment is None:
        raise NotFound("No such payment.")
    if payment.provider != PaymentProvider.TEST:
        raise InvalidInput.field("paymentId", "is not a TEST payment")
    if payment.status != PaymentStatus.PENDING:
        if succeed and payment.status in (PaymentStatus.AUTHORIZED, *CAPTURED_PAYMENT):
            return payment  # confirmed already: the same answer again
        raise Conflict("This payment is not waiting for confirmation.")
    if succeed:
        await payment_authorized(session, booking, payment, now=now, rules=rules, gateways=gateways)
    else:
        await payments.fail(session, payment, now=now)
    return payment


async def answer_request(
    session: AsyncSession,
    *,
    actor: User,
    booking_id: int,
    accept: bool,
    reason: str | None,
    now: datetime,
    gateways: payments.Gateways,
) -> Booking:
    """The host accepts (the held payment is taken) or declines (it is let go)."""
    booking, listing = await booking_for_change(session, actor=actor, booking_id=booking_id)
    if actor.id != listing.host_id:
        raise Forbidden("Only the listing's host answers a booking request.")
    reason = _check_text(reason, "reason", MAX_REASON)
    payment = await payments.live_payment(session, booking.id, lock=True)
    if (
        booking.status != BookingStatus.PENDING
        or payment is None
        or payment.status != PaymentStatus.AUTHORIZED
    ):
        raise Conflict("This booking is not waiting for your answer.")
    if booking.expires_at is not None and booking.expires_at <= now:
        raise Conflict("This request has expired.")
    if accept:
        await payments.capture(session, payment, gateways.get(payment.provider), now=now)
        _confirm(session, booking, now)
    else:
        await _cancel(
            session,
            booking,
            listing,
            payment,
            by=Party.HOST,
            reason=reason or "Declined by the host.",
            now=now,
            gateways=gateways,
        )
    return booking


# Cancel.


def night_starts(booking: Booking, listing: Listing) -> list[datetime]:
    """When each night of the stay begins: the check-in time, kept by the booking, each day."""
    zone = ZoneInfo(listing.time_zone)
    arrival = booking.starts_at.astimezone(zone).time()
    return [
        datetime.combine(booking.check_in + timedelta(days=offset), arrival, zone)
        for offset in range(len(booking.night_prices_minor))
    ]


def refund_due(
    booking: Booking, listing: Listing, payment: Payment | None, *, by: Party, now: datetime
) -> int:
    return refund_on_cancel(
        booking.cancellation_policy,
        paid=payments.captured_balance(payment),
        night_prices=booking.night_prices_minor,
        night_starts=night_starts(booking, listing),
        booked_at=booking.created_at,
        now=now,
        by_host=by != Party.GUEST,
    )


async def _cancel(
    session: AsyncSession,
    booking: Booking,
    listing: Listing,
    payment: Payment | None,
    *,
    by: Party,
    reason: str | None,
    now: datetime,
    gateways: payments.Gateways,
) -> None:
    refund = refund_due(booking, listing, payment, by=by, now=now)
    _move(booking, BookingStatus.CANCELED)
    if payment is not None:
        await payments.settle_cancellation(
            session, payment, gateways.get(payment.provider), refund=refund, now=now
        )
    booking.canceled_at = now
    booking.canceled_by = by
    booking.cancel_reason = reason
    booking.refund_minor = refund
    booking.expires_at = None
    emit(session, BookingCanceled(booking.id, by=by, refund_minor=refund), now=now)
    await results_changed(session)


async def cancel_booking(
    session: AsyncSession,
    *,
    actor: User,
    booking_id: int,
    reason: str | None,
    now: datetime,
    gateways: payments.Gateways,
) -> Booking:
    """By the guest, with the refund its policy gives; by the host or an admin, refunded in full."""
    booking, listing = await booking_for_change(session, actor=actor, booking_id=booking_id)
    reason = _check_text(reason, "reason", MAX_REASON)
    if booking.status not in ACTIVE:
        raise Conflict(f"A {booking.status.lower()} booking cannot be canceled.")
    payment = await payments.live_payment(session, booking.id, lock=True)
    by = role_of(actor, booking, listing)
    await _cancel(
        session, booking, listing, payment, by=by, reason=reason, now=now, gateways=gateways
    )
    return booking


# Modify.


async def modify_booking(
    session: AsyncSession,
    *,
    actor: User,
    booking_id: int,
    stay: Stay,
    rules: BookingRules,
    now: datetime,
    gateways: payments.Gateways,
) -> Booking:
    """New dates or guests, if the nights are free; the difference in price is charged or
    refunded through the payment's provider."""
    listing_id = await session.scalar(select(Booking.listing_id).where(Booking.id == booking_id))
    if listing_id is not None:
        await _lock_calendar(session, listing_id, bookable=False)
    booking, listing = await booking_for_change(session, actor=actor, booking_id=booking_id)
    if booking.guest_id != actor.id:
        raise Forbidden("Only the guest changes a booking.")
    if booking.status not in ACTIVE:
        raise Conflict(f"A {booking.status.lower()} booking cannot be changed.")
    if booking.status == BookingStatus.PENDING and (
        booking.expires_at is None or booking.expires_at <= now
    ):
        # A lapsed hold no longer counts against the guest's cap on holds: changing it must
        # not open it again (a request gets a new payment window below), past that cap.
        raise Conflict("This booking's hold has lapsed; book again.")
    if booking.starts_at <= now:
        raise Conflict("A stay that has begun cannot be changed.")
    if listing.deleted_at is not None:
        raise Conflict("This listing is no longer available.")
    payment = await payments.live_payment(session, booking.id, lock=True)
    _check_stay(listing, stay, now=now, rules=rules)
    await _refuse_taken(session, listing.id, stay, except_booking=booking.id)
    total_before = booking.total_minor
    price = await _price(session, listing, stay, rules)
    _set_stay(booking, listing, stay, price)
    await flush_stay(session)
    difference = price.total - total_before
    if payment is not None and payment.status in CAPTURED_PAYMENT and difference:
        gateway = gateways.get(payment.provider)
        # Named by its place in the ledger: a rerun of this transaction repeats the key (and
        # the provider dedupes), while a later change, even back to earlier dates, gets its own.
        key = await payments.next_key(session, payment, "change")
        if difference > 0:
            await payments.charge_more(
                session, payment, gateway, amount=difference, key=key, now=now
            )
        else:
            await payments.refund_amount(
                session, payment, gateway, amount=-difference, key=key, now=now
            )
    elif payment is not None and payment.status == PaymentStatus.AUTHORIZED:
        # A request the host has not answered: the hold on the card was for the old stay. It
        # is let go, and the guest pays the new stay before the request goes to the host again.
        await payments.settle_cancellation(
            session, payment, gateways.get(payment.provider), refund=0, now=now
        )
        booking.expires_at = now + rules.payment_window
    elif payment is not None and payment.status == PaymentStatus.PENDING:
        payment.status = (
            PaymentStatus.CANCELED
        )  # priced for the old stay: the guest pays the new one
    modified = BookingModified(booking.id, stay.check_in, stay.check_out, difference)
    emit(session, modified, now=now)
    await results_changed(session)
    return booking


# The clock: what workers run.


async def expire_due(
    session: AsyncSession, *, now: datetime, gateways: payments.Gateways, limit: int = 100
) -> int:
    """Cancels PENDING bookings whose hold lapsed (unpaid, or unanswered by the host)."""
    rows = (
        await session.execute(
            select(Booking, Listing)
            .join(Listing, Listing.id == Booking.listing_id)
            .where(Booking.status == BookingStatus.PENDING, Booking.expires_at <= now)
            .order_by(Booking.expires_at)
            .limit(limit)
            .with_for_update(of=Booking, skip_locked=True)
        )
    ).all()
    for booking, listing in rows:
        payment = await payments.live_payment(session, booking.id, lock=True)
        answered_late = payment is not None and payment.status == PaymentStatus.AUTHORIZED
        await _cancel(
            session,
            booking,
            listing,
            payment,
            by=Party.SYSTEM,
            reason="The host did not answer in time." if answered_late else "Not paid in time.",
            now=now,
            gateways=gateways,
        )
    return len(rows)


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


# Lists.


@dataclass(frozen=True)
class BookingPage:
    bookings: list[Booking]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[tuple[int]]


def _encode(booking: Booking) -> str:
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
    query = select(Booking).where(*conditions)
    key = (Booking.check_in, Booking.id)
    if after:
        check_in, booking_id = _decode(after)
        query = query.where(
            tuple_(*key) < (check_in, booking_id)
            if newest_first
            else tuple_(*key) > (check_in, booking_id)
        )
    order = [column.desc() if newest_first else column.asc() for column in key]
    rows = (await session.scalars(query.order_by(*order).limit(first + 1))).all()
    page = list(rows[:first])
    total = select(func.count()).select_from(Booking).where(*conditions)
    return BookingPage(page, [_encode(b) for b in page], len(rows) > first, total)
