"""In-app notifications: what each user is told of their bookings, payments, payouts and
reviews, written by the outbox handlers (services/event_handlers.py) and read a page at a time.

Each is written at most once per outbox event and recipient (a unique ``event_id, user_id``),
so an event handled again, after a crash or by a second worker, tells nobody twice. Titles and
bodies are written here, for people: the listing's title, the stay's dates, money formatted.
While a review is double-blind its notification says who wrote one, never what it says.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import (
    MAX_NOTIFICATION_BODY,
    MAX_NOTIFICATION_TITLE,
    Booking,
    Dispute,
    Listing,
    Message,
    MessageThread,
    Notification,
    Payment,
    PaymentOperation,
    Review,
    User,
)
from db.rows import NotificationRow
from db.states import (
    DisputeResolution,
    NotificationKind,
    OperationKind,
    OperationStatus,
    Party,
    ReviewKind,
)
from services import cursors, events
from services.errors import InvalidInput
from services.events import emit
from services.money import Money

MAX_PAGE_SIZE = 100
MAX_MARK_IDS = 100
# The provider's words about a declined payment are quoted, but only so much of them.
MAX_REASON = 300
# How much of a message its notification shows.
MESSAGE_PREVIEW = 200


# Writing.


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


async def notify(
    session: AsyncSession,
    *,
    user_id: int,
    kind: NotificationKind,
    title: str,
    body: str,
    booking_id: int | None,
    event_id: int | None,
    now: datetime,
) -> int | None:
    """Writes the notification; None when ``event_id`` already told this user (nothing new)."""
    notification_id = await session.scalar(
        insert(Notification)
        .values(
            user_id=user_id,
            kind=kind,
            title=_clip(title, MAX_NOTIFICATION_TITLE),
            body=_clip(body, MAX_NOTIFICATION_BODY),
            booking_id=booking_id,
            event_id=event_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Notification.event_id, Notification.user_id])
        .returning(Notification.id)
    )
    if notification_id is not None:
        emit(session, events.NotificationCreated(notification_id, user_id), now=now)
    return notification_id


@dataclass(frozen=True)
class _Stay:
    booking: Booking
    listing: Listing
    guest: User
    host: User

    @property
    def dates(self) -> str:
        return stay_dates(self.booking.check_in, self.booking.check_out)


def stay_dates(check_in: date, check_out: date) -> str:
    """ "12 Jan to 14 Jan 2027"; each with its year when the stay spans a new year."""
    if check_in.year == check_out.year:
        return f"{check_in:%-d %b} to {check_out:%-d %b %Y}"
    return f"{check_in:%-d %b %Y} to {check_out:%-d %b %Y}"


async def _stay(session: AsyncSession, booking_id: int) -> _Stay:
    guest, host = aliased(User), aliased(User)
    row = (
        await session.execute(
            select(Booking, Listing, guest, host)
            .join(Listing, Listing.id == Booking.listing_id)
            .join(guest, guest.id == Booking.guest_id)
            .join(host, host.id == Listing.host_id)
            .where(Booking.id == booking_id)
        )
    ).one()
    return _Stay(*row)


@dataclass(frozen=True)
class Source:
    """The outbox event being told of, and when."""

    event_id: int
    now: datetime


async def _tell(
    session: AsyncSession,
    source: Source,
    user: User,
    kind: NotificationKind,
    title: str,
    body: str,
    *,
    stay: _Stay,
) -> None:
    await notify(
        session,
        user_id=user.id,
        kind=kind,
        title=title,
        body=body,
        booking_id=stay.booking.id,
        event_id=source.event_id,
        now=source.now,
    )


async def booking_requested(session: AsyncSession, *, booking_id: int, source: Source) -> None:
    stay = await _stay(session, booking_id)
    guests = stay.booking.guests
    await _tell(
        session,
        source,
        stay.host,
        NotificationKind.BOOKING_REQUESTED,
        f"New booking request for {stay.listing.title}",
        f"{stay.guest.first_name} asks to stay {stay.dates} with "
        f"{guests} guest{'s' if guests != 1 else ''}. Accept or decline within 24 hours.",
        stay=stay,
    )


async def booking_confirmed(session: AsyncSession, *, booking_id: int, source: Source) -> None:
    stay = await _stay(session, booking_id)
    await _tell(
        session,
        source,
        stay.guest,
        NotificationKind.BOOKING_CONFIRMED,
        f"Your stay at {stay.listing.title} is confirmed",
        f"You are booked {stay.dates}.",
        stay=stay,
    )
    await _tell(
        session,
        source,
        stay.host,
        NotificationKind.BOOKING_CONFIRMED,
        f"New reservation at {stay.listing.title}",
        f"{stay.guest.first_name} stays {stay.dates}.",
        stay=stay,
    )


async def booking_canceled(
    session: AsyncSession, *, booking_id: int, by: Party, refund_minor: int, source: Source
) -> None:
    """The side that did not cancel is told; both when an admin or Roost did. The host hears of
    a lapsed hold only if the guest's money was held: an unpaid one never reached them."""
    stay = await _stay(session, booking_id)
    title = stay.listing.title
    if by != Party.GUEST:
        refund = Money(refund_minor, stay.booking.currency).formatted()
        why = {
            Party.HOST: "The host canceled it.",
            Party.ADMIN: "Roost canceled it.",
            Party.SYSTEM: stay.booking.cancel_reason or "Its hold lapsed.",
            Party.GUEST: "",
        }[by]
        refunded = f" You get {refund} back." if refund_minor else ""
        await _tell(
            session,
            source,
            stay.guest,
            NotificationKind.BOOKING_CANCELED,
            f"Your booking at {title} is canceled",
            f"Your stay {stay.dates} is canceled. {why}{refunded}",
            stay=stay,
        )
    if by in (Party.GUEST, Party.ADMIN) or (
        by == Party.SYSTEM and await _money_moved(session, booking_id)
    ):
        who = f"{stay.guest.first_name} canceled" if by == Party.GUEST else "Roost canceled"
        await _tell(
            session,
            source,
            stay.host,
            NotificationKind.BOOKING_CANCELED,
            f"A booking at {title} is canceled",
            f"{who} the stay {stay.dates}; those nights are free again.",
            stay=stay,
        )


async def _money_moved(session: AsyncSession, booking_id: int) -> bool:
    """Whether the guest's money was ever held or taken for the booking: only then was its
    host asked or told of it."""
    moved = await session.scalar(
        select(PaymentOperation.id)
        .join(Payment, Payment.id == PaymentOperation.payment_id)
        .where(
            Payment.booking_id == booking_id,
            PaymentOperation.kind.in_(
                (OperationKind.AUTHORIZE, OperationKind.CAPTURE, OperationKind.CHARGE)
            ),
            PaymentOperation.status == OperationStatus.SUCCEEDED,
        )
        .limit(1)
    )
    return moved is not None


async def booking_completed(session: AsyncSession, *, booking_id: int, source: Source) -> None:
    stay = await _stay(session, booking_id)
    await _tell(
        session,
        source,
        stay.guest,
        NotificationKind.BOOKING_COMPLETED,
        f"How was {stay.listing.title}?",
        f"Thank you for staying {stay.dates}. Review your stay within 14 days: "
        "it helps the next guests choose.",
        stay=stay,
    )


async def _payment_money(session: AsyncSession, payment_id: int, amount_minor: int) -> str:
    payment = await session.get_one(Payment, payment_id)
    return Money(amount_minor, payment.currency).formatted()


async def payment_succeeded(
    session: AsyncSession, *, payment_id: int, booking_id: int, amount_minor: int, source: Source
) -> None:
    stay = await _stay(session, booking_id)
    amount = await _payment_money(session, payment_id, amount_minor)
    await _tell(
        session,
        source,
        stay.guest,
        NotificationKind.PAYMENT_SUCCEEDED,
        f"Payment received for {stay.listing.title}",
        f"You paid {amount} for your stay {stay.dates}.",
        stay=stay,
    )


async def payment_failed(
    session: AsyncSession, *, booking_id: int, reason: str | None, source: Source
) -> None:
    stay = await _stay(session, booking_id)
    said = f" Your bank said: {_clip(reason.strip(), MAX_REASON)}" if reason else ""
    if said and not said.endswith((".", "!", "?")):
        said += "."
    await _tell(
        session,
        source,
        stay.guest,
        NotificationKind.PAYMENT_FAILED,
        f"Your payment for {stay.listing.title} did not go through",
        f"We could not take the payment for your stay {stay.dates}.{said} "
        "Your nights stay held for a few minutes: try again or use another card.",
        stay=stay,
    )


async def payment_refunded(
    session: AsyncSession, *, payment_id: int, booking_id: int, amount_minor: int, source: Source
) -> None:
    stay = await _stay(session, booking_id)
    amount = await _payment_money(session, payment_id, amount_minor)
    await _tell(
        session,
        source,
        stay.guest,
        NotificationKind.PAYMENT_REFUNDED,
        f"{amount} refunded for {stay.listing.title}",
        f"We refunded {amount} of your payment for the stay {stay.dates}. "
        "Your bank may take a few days to show it.",
        stay=stay,
    )


async def payout_sent(
    session: AsyncSession,
    *,
    booking_id: int,
    host_id: int,
    amount_minor: int,
    currency: str,
    source: Source,
) -> None:
    stay = await _stay(session, booking_id)
    amount = Money(amount_minor, currency).formatted()
    host = stay.host if stay.host.id == host_id else await session.get_one(User, host_id)
    await _tell(
        session,
        source,
        host,
        NotificationKind.PAYOUT_SENT,
        f"{amount} is on its way to you",
        f"We sent your payout for {stay.guest.first_name}'s stay at {stay.listing.title}, "
        f"{stay.dates}.",
        stay=stay,
    )


async def dispute_opened(
    session: AsyncSession, *, dispute_id: int, booking_id: int, source: Source
) -> None:
    """Both sides hear of it, the one who opened it too (their receipt of it)."""
    stay = await _stay(session, booking_id)
    dispute = await session.get_one(Dispute, dispute_id)
    who = "guest" if dispute.opened_as == Party.GUEST else "host"
    for user in (stay.guest, stay.host):
        await _tell(
            session,
            source,
            user,
            NotificationKind.DISPUTE_OPENED,
            f"A dispute was opened about {stay.listing.title}",
            f"The {who} asked Roost to look into the stay {stay.dates}. An admin will be in touch.",
            stay=stay,
        )


async def dispute_resolved(
    session: AsyncSession, *, dispute_id: int, booking_id: int, source: Source
) -> None:
    stay = await _stay(session, booking_id)
    dispute = await session.get_one(Dispute, dispute_id)
    amount = Money(dispute.amount_minor or 0, dispute.currency or stay.booking.currency)
    outcome = {
        DisputeResolution.REFUND: f"The guest is refunded {amount.formatted()}.",
        DisputeResolution.PAYOUT_ADJUSTMENT: f"The host's payout is {amount.formatted()} smaller.",
        DisputeResolution.NO_ACTION: "No money moves.",
    }.get(DisputeResolution(dispute.resolution or DisputeResolution.NO_ACTION), "")
    for user in (stay.guest, stay.host):
        await _tell(
            session,
            source,
            user,
            NotificationKind.DISPUTE_RESOLVED,
            f"The dispute about {stay.listing.title} is resolved",
            f"{outcome} {dispute.resolution_note or ''}".strip(),
            stay=stay,
        )


async def message_received(
    session: AsyncSession, *, message_id: int, recipient_id: int, source: Source
) -> None:
    """The other side of a thread hears who wrote, about which listing, and how it begins."""
    found = (
        await session.execute(
            select(Message, MessageThread, Listing, User)
            .join(MessageThread, MessageThread.id == Message.thread_id)
            .join(Listing, Listing.id == MessageThread.listing_id)
            .join(User, User.id == Message.sender_id)
            .where(Message.id == message_id)
        )
    ).one_or_none()
    if found is None:
        return
    message, thread, listing, sender = found
    await notify(
        session,
        user_id=recipient_id,
        kind=NotificationKind.MESSAGE_RECEIVED,
        title=f"{sender.first_name} wrote about {listing.title}",
        body=_clip(" ".join(message.body.split()), MESSAGE_PREVIEW),
        booking_id=thread.booking_id,
        event_id=source.event_id,
        now=source.now,
    )


def _reviewer(stay: _Stay, review: Review) -> tuple[User, str]:
    """Who wrote the review, and what it is of as its subject says it."""
    if review.kind == ReviewKind.GUEST_REVIEW:
        return stay.guest, f"their stay at {stay.listing.title}"
    return stay.host, f"you as a guest at {stay.listing.title}"


async def review_received(session: AsyncSession, *, review_id: int, source: Source) -> None:
    """Its subject is told a review waits for theirs. One already published (both are written)
    is told of by ``review_published`` instead."""
    review = await session.get_one(Review, review_id)
    if review.published_at is not None:
        return
    stay = await _stay(session, review.booking_id)
    author, about = _reviewer(stay, review)
    subject = stay.host if review.kind == ReviewKind.GUEST_REVIEW else stay.guest
    yours = "the guest" if review.kind == ReviewKind.GUEST_REVIEW else "your stay"
    closes = f"{review.window_closes_at:%-d %b %Y}"
    await _tell(
        session,
        source,
        subject,
        NotificationKind.REVIEW_RECEIVED,
        f"{author.first_name} reviewed {about}",
        f"Review {yours} by {closes} to read it: both reviews are shown once both are "
        "written, or when the time to review ends.",
        stay=stay,
    )


async def review_published(session: AsyncSession, *, review_id: int, source: Source) -> None:
    review = await session.get_one(Review, review_id)
    if review.hidden_at is not None:
        return
    stay = await _stay(session, review.booking_id)
    author, about = _reviewer(stay, review)
    subject = stay.host if review.kind == ReviewKind.GUEST_REVIEW else stay.guest
    await _tell(
        session,
        source,
        subject,
        NotificationKind.REVIEW_RECEIVED,
        f"{author.first_name}'s review of {about} is published",
        f"{author.first_name} rated it {review.rating} out of 5. Read it on your profile.",
        stay=stay,
    )


async def review_responded(session: AsyncSession, *, review_id: int, source: Source) -> None:
    review = await session.get_one(Review, review_id)
    stay = await _stay(session, review.booking_id)
    await _tell(
        session,
        source,
        stay.guest,
        NotificationKind.REVIEW_RECEIVED,
        f"{stay.host.first_name} answered your review of {stay.listing.title}",
        "Read their answer under your review.",
        stay=stay,
    )


async def listing_moderated(
    session: AsyncSession, *, listing_id: int, reason: str | None, source: Source
) -> None:
    """Its host is told an admin approved the listing (``reason`` None) or flagged it."""
    listing = await session.get_one(Listing, listing_id)
    if reason is None:
        kind = NotificationKind.LISTING_APPROVED
        title = f"{listing.title} is approved"
        body = "Guests can find and book it while it is published."
    else:
        kind = NotificationKind.LISTING_FLAGGED
        title = f"{listing.title} is flagged by Roost"
        body = (
            f"It is out of search until an admin approves it. Why: {reason} "
            "Edit the listing to send it for another review."
        )
    await notify(
        session,
        user_id=listing.host_id,
        kind=kind,
        title=title,
        body=body,
        booking_id=None,
        event_id=source.event_id,
        now=source.now,
    )


async def calendar_conflicted(
    session: AsyncSession,
    *,
    listing_id: int,
    import_name: str,
    first_night: date,
    nights: int,
    source: Source,
) -> None:
    """Its host is told another site's calendar shows nights that are booked on Roost."""
    listing = await session.get_one(Listing, listing_id)
    counted = "1 night" if nights == 1 else f"{nights} nights"
    await notify(
        session,
        user_id=listing.host_id,
        kind=NotificationKind.CALENDAR_CONFLICT,
        title=f"{listing.title}: {import_name} shows nights booked on Roost",
        body=f"{counted} from {first_night:%d %b %Y} are booked on Roost and stay booked; "
        f"the calendar {import_name} shows them taken too. Check the other site.",
        booking_id=None,
        event_id=source.event_id,
        now=source.now,
    )


# Reading, and marking read.


@dataclass(frozen=True)
class NotificationPage:
    notifications: list[NotificationRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


_COLUMNS = tuple(getattr(Notification, name) for name in NotificationRow._fields)


async def list_notifications(
    session: AsyncSession,
    *,
    user_id: int,
    unread_only: bool = False,
    first: int = 20,
    after: str | None = None,
) -> NotificationPage:
    """A page of the user's notifications, newest first."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions = [Notification.user_id == user_id]
    if unread_only:
        conditions.append(Notification.read_at.is_(None))
    query = select(*_COLUMNS).where(*conditions)
    key = (Notification.created_at, Notification.id)
    if after:
        query = query.where(tuple_(*key) < cursors.unpack_moment(after))
    rows = (await session.execute(query.order_by(*(c.desc() for c in key)).limit(first + 1))).all()
    page = [NotificationRow._make(row) for row in rows[:first]]
    return NotificationPage(
        page,
        [cursors.pack_moment(row.created_at, row.id) for row in page],
        len(rows) > first,
        select(func.count()).select_from(Notification).where(*conditions),
    )


async def of_user(
    session: AsyncSession, *, user_id: int, ids: Sequence[int]
) -> dict[int, NotificationRow]:
    """Those of ``ids`` that are the user's, by id: another's is as good as missing."""
    rows = await session.execute(
        select(*_COLUMNS).where(Notification.id.in_(ids), Notification.user_id == user_id)
    )
    return {row.id: row for row in map(NotificationRow._make, rows)}


async def unread_count(session: AsyncSession, *, user_id: int) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


async def mark_read(
    session: AsyncSession, *, user_id: int, ids: Sequence[int] | None, now: datetime
) -> int:
    """Marks the user's unread notifications read, all of them or those of ``ids`` (anyone
    else's are left alone); answers how many changed."""
    if ids is not None and len(ids) > MAX_MARK_IDS:
        raise InvalidInput.field("ids", f"at most {MAX_MARK_IDS} at a time")
    statement = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if ids is not None:
        statement = statement.where(Notification.id.in_(ids))
    changed = await session.execute(
        statement.values(read_at=now).returning(Notification.id),
        execution_options={"synchronize_session": False},
    )
    return len(changed.all())
