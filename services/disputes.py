"""Disputes: a booking's guest or host asks Roost to step in, and an admin decides.

Either side of a CONFIRMED or COMPLETED booking opens one, from the booking until
``OPEN_WINDOW`` after its check-out; a booking has at most one open dispute at a time (a
unique partial index has the last word on racing requests). While one is open the booking's
payout is not sent (``payouts.claim_due`` skips it). Admins see the queue oldest first, add
notes that only admins read, and resolve it: a REFUND to the guest through the refunds' own
path (bounded by what is left of the payment), a PAYOUT_ADJUSTMENT that makes the host's
payout, not yet sent, smaller, or NO_ACTION. Both sides are told when a dispute is opened and
when it is resolved (outbox events: in the app, and by mail to those who take news by email);
every step is in the audit log.

The payout is still written on time (``payouts.create_due``), only its sending waits, so an
adjustment has a payout to change. It counts the refunds made before it was written: a REFUND
decided after that is Roost's to bear, a PAYOUT_ADJUSTMENT the host's.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.rules import is_admin
from db.database import sqlstate
from db.models import MAX_DISPUTE_TEXT, Booking, Dispute, DisputeNote, Listing
from db.rows import Actor, DisputeNoteRow, DisputeRow
from db.states import (
    BookingStatus,
    DisputeResolution,
    DisputeStatus,
    Party,
)
from services import audit, bookings, checkout, cursors, payouts
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.events import DisputeOpened, DisputeResolved, emit
from services.payments import Gateways, ProviderCall
from services.validation import has_control_characters

# Long enough for a guest to notice a charge and a host a damage after check-out; payouts
# are sent a day after it, so a dispute opened later than that finds the payout sent.
OPEN_WINDOW = timedelta(days=30)
MAX_PAGE_SIZE = 100
MAX_NOTES = 100
_UNIQUE_VIOLATION = "23505"
_DISPUTABLE = (BookingStatus.CONFIRMED, BookingStatus.COMPLETED)
_ROW = tuple(getattr(Dispute, name) for name in DisputeRow._fields)
_NOTE_ROW = tuple(getattr(DisputeNote, name) for name in DisputeNoteRow._fields)


@dataclass(frozen=True)
class Amount:
    """An amount as an admin typed it: a decimal in a currency."""

    amount: Decimal
    currency: str


def _text(value: str, field: str) -> str:
    text = value.strip()
    if not 1 <= len(text) <= MAX_DISPUTE_TEXT or has_control_characters(text, allow_newlines=True):
        raise InvalidInput.field(field, f"must be 1 to {MAX_DISPUTE_TEXT} characters of plain text")
    return text


def _row(dispute: Dispute) -> DisputeRow:
    return DisputeRow._make(getattr(dispute, name) for name in DisputeRow._fields)


async def _sides(session: AsyncSession, booking_id: int) -> tuple[Booking, Listing]:
    row = (
        await session.execute(
            select(Booking, Listing)
            .join(Listing, Listing.id == Booking.listing_id)
            .where(Booking.id == booking_id)
        )
    ).one()
    return row.Booking, row.Listing


async def open_dispute(
    session: AsyncSession, *, actor: Actor, booking_id: int, message: str, now: datetime
) -> DisputeRow:
    """The booking's guest or host opens a dispute about it, with a message."""
    found = await bookings.lock_booking(session, booking_id)
    if found is None or not (is_admin(actor) or actor.id in (found[0].guest_id, found[1].host_id)):
        raise NotFound("No such booking.")
    booking, listing = found
    if actor.id not in (booking.guest_id, listing.host_id):
        raise Forbidden("Only the booking's guest or host opens a dispute about it.")
    text = _text(message, "message")
    if booking.status not in _DISPUTABLE:
        raise Conflict(f"A {booking.status.lower()} booking cannot be disputed.")
    if now > booking.ends_at + OPEN_WINDOW:
        raise Conflict(f"Disputes are opened up to {OPEN_WINDOW.days} days after check-out.")
    party = Party.GUEST if actor.id == booking.guest_id else Party.HOST
    try:
        dispute_id = await session.scalar(
            insert(Dispute)
            .values(
                booking_id=booking.id,
                opened_by=actor.id,
                opened_as=party,
                message=text,
                status=DisputeStatus.OPEN,
                created_at=now,
            )
            .returning(Dispute.id)
        )
    except IntegrityError as error:
        if sqlstate(error) == _UNIQUE_VIOLATION:
            raise Conflict("This booking has an open dispute already.") from None
        raise
    dispute = await session.get_one(Dispute, dispute_id)
    emit(session, DisputeOpened(dispute.id, booking.id), now=now)
    await audit.record(
        session,
        actor_id=actor.id,
        action="dispute.open",
        subject=("Dispute", dispute.id),
        before=None,
        after={"status": dispute.status, "booking_id": booking.id, "opened_as": party},
        now=now,
    )
    return _row(dispute)


# Admins.


@dataclass(frozen=True)
class DisputePage:
    disputes: list[DisputeRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


def _refuse_non_admin(admin: Actor) -> None:
    if not is_admin(admin):
        raise Forbidden("Only admins handle disputes.")


async def list_disputes(
    session: AsyncSession,
    *,
    admin: Actor,
    status: str | None,
    first: int,
    after: str | None,
) -> DisputePage:
    """The queue: disputes of a status (all: None), oldest first, so the longest waiting is
    handled first."""
    _refuse_non_admin(admin)
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(Dispute.status == status)
    query = select(*_ROW).where(*conditions)
    if after:
        (last,) = cursors.unpack(after, size=1, problem="is not a cursor of this list")
        if not isinstance(last, int) or isinstance(last, bool):
            raise InvalidInput.field("after", "is not a cursor of this list")
        query = query.where(Dispute.id > last)
    rows = (await session.execute(query.order_by(Dispute.id).limit(first + 1))).all()
    page = [DisputeRow._make(row) for row in rows[:first]]
    total = select(func.count()).select_from(Dispute).where(*conditions)
    return DisputePage(page, [cursors.pack(row.id) for row in page], len(rows) > first, total)


async def _locked(session: AsyncSession, dispute_id: int) -> Dispute:
    dispute = await session.get(Dispute, dispute_id, with_for_update=True)
    if dispute is None:
        raise NotFound("No such dispute.")
    return dispute


async def add_note(
    session: AsyncSession, *, admin: Actor, dispute_id: int, body: str, now: datetime
) -> DisputeRow:
    """An admin's note on a dispute, open or resolved: read by admins only."""
    _refuse_non_admin(admin)
    text = _text(body, "body")
    dispute = await _locked(session, dispute_id)
    count = await session.scalar(select(func.count()).where(DisputeNote.dispute_id == dispute.id))
    if (count or 0) >= MAX_NOTES:
        raise Conflict(f"A dispute holds at most {MAX_NOTES} notes.")
    note_id = await session.scalar(
        insert(DisputeNote)
        .values(dispute_id=dispute.id, author_id=admin.id, body=text, created_at=now)
        .returning(DisputeNote.id)
    )
    await audit.record(
        session,
        actor_id=admin.id,
        action="dispute.note",
        subject=("Dispute", dispute.id),
        before=None,
        after={"note_id": note_id},
        reason=text,
        now=now,
    )
    return _row(dispute)


async def resolve(
    session: AsyncSession,
    *,
    admin: Actor,
    dispute_id: int,
    resolution: DisputeResolution,
    amount: Amount | None,
    note: str,
    now: datetime,
    gateways: Gateways | None = None,
) -> tuple[DisputeRow, ProviderCall | None]:
    """An admin decides an open dispute. REFUND: ``amount`` goes back to the guest from the
    booking's payment (more than 0, at most what is left of it), as every refund does;
    PAYOUT_ADJUSTMENT: the host's payout, not yet sent, is ``amount`` smaller; NO_ACTION:
    no amount. ``note`` tells both sides why. Answers the dispute and, for a refund, the
    movement to ask the provider for once this commits (left alone, the worker asks for it;
    ``gateways`` rounds the refund to what the provider can move)."""
    _refuse_non_admin(admin)
    text = _text(note, "note")
    dispute = await _locked(session, dispute_id)
    if dispute.status != DisputeStatus.OPEN:
        raise Conflict("This dispute is resolved already.")
    booking, _ = await _sides(session, dispute.booking_id)
    call: ProviderCall | None = None
    minor: int | None = None
    after: dict[str, object] = {"status": DisputeStatus.RESOLVED, "resolution": resolution}
    if resolution == DisputeResolution.NO_ACTION:
        if amount is not None:
            raise InvalidInput.field("amount", "must be left out for NO_ACTION")
    elif amount is None:
        raise InvalidInput.field("amount", f"is needed for {resolution}")
    elif resolution == DisputeResolution.REFUND:
        minor, call = await checkout.refund_booking(
            session,
            booking_id=booking.id,
            amount=amount.amount,
            currency=amount.currency,
            gateways=gateways,
            purpose=f"dispute-{dispute.id}-refund",
            now=now,
        )
    else:
        minor = checkout.amount_of(
            amount.amount, amount.currency, expected=booking.currency, field="amount"
        )
        if minor == 0:
            raise InvalidInput.field("amount", "must be more than 0")
        before, left = await payouts.reduce_unsent(
            session, booking_id=booking.id, amount=minor, now=now
        )
        after["payout_minor"] = {"before": before, "after": left}
    if minor is not None:
        dispute.amount_minor = minor
        dispute.currency = booking.currency
        after.update(amount_minor=minor, currency=booking.currency)
    dispute.status = DisputeStatus.RESOLVED
    dispute.resolution = resolution
    dispute.resolution_note = text
    dispute.resolved_by = admin.id
    dispute.resolved_at = now
    await session.flush()
    emit(session, DisputeResolved(dispute.id, booking.id), now=now)
    await audit.record(
        session,
        actor_id=admin.id,
        action="dispute.resolve",
        subject=("Dispute", dispute.id),
        before={"status": DisputeStatus.OPEN},
        after=after,
        reason=text,
        now=now,
    )
    return _row(dispute), call


# Reads.


async def disputes_by_id(session: AsyncSession, ids: list[int]) -> dict[int, DisputeRow]:
    rows = (await session.execute(select(*_ROW).where(Dispute.id.in_(ids)))).all()
    return {row.id: DisputeRow._make(row) for row in rows}


async def notes_of(session: AsyncSession, dispute_id: int) -> list[DisputeNoteRow]:
    """A dispute's notes, oldest first: admins only (the caller checks)."""
    rows = await session.execute(
        select(*_NOTE_ROW).where(DisputeNote.dispute_id == dispute_id).order_by(DisputeNote.id)
    )
    return [DisputeNoteRow._make(row) for row in rows]


async def disputes_of_party(
    session: AsyncSession, *, user_id: int, first: int, after: str | None
) -> DisputePage:
    """The disputes about bookings the user is the guest or the host of, newest first."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    theirs = (
        select(Booking.id)
        .join(Listing, Listing.id == Booking.listing_id)
        .where((Booking.guest_id == user_id) | (Listing.host_id == user_id))
    )
    conditions = [Dispute.booking_id.in_(theirs)]
    query = select(*_ROW).where(*conditions)
    if after:
        (last,) = cursors.unpack(after, size=1, problem="is not a cursor of this list")
        if not isinstance(last, int) or isinstance(last, bool):
            raise InvalidInput.field("after", "is not a cursor of this list")
        query = query.where(Dispute.id < last)
    rows = (await session.execute(query.order_by(Dispute.id.desc()).limit(first + 1))).all()
    page = [DisputeRow._make(row) for row in rows[:first]]
    total = select(func.count()).select_from(Dispute).where(*conditions)
    return DisputePage(page, [cursors.pack(row.id) for row in page], len(rows) > first, total)


async def parties_of(session: AsyncSession, booking_id: int) -> tuple[int, int]:
    """The booking's guest and host."""
    booking, listing = await _sides(session, booking_id)
    return booking.guest_id, listing.host_id
