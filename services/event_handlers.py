"""Who hears about what: the handlers of outbox events, run by the worker (app/worker.py).

A kind of event may have several handlers (mail now; in-app notifications, payouts and
search-cache purges later), each under a name of its own. The worker runs each handler in a
transaction of its own that records it done under that name, so what a handler writes to the
database happens once, and a handler that fails is retried without repeating the others. Mail
about bookings carries a Message-ID made from the event, so a copy sent again after a crash
can be recognised as the same message.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import Booking, Listing, User
from gateways.email import Email, Mailer
from services import accounts, notifications
from services.events import (
    BookingCanceled,
    BookingCompleted,
    BookingConfirmed,
    BookingCreated,
    BookingModified,
    BookingRequested,
    EmailVerificationRequested,
    Event,
    NotificationCreated,
    PasswordResetRequested,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    PayoutSent,
    ReviewPublished,
    ReviewReceived,
    ReviewResponded,
)
from services.money import Money


@dataclass(frozen=True)
class HandlerContext:
    event_id: int
    mailer: Mailer
    frontend_url: str
    now: datetime


E = TypeVar("E", bound=Event)
Handler = Callable[[AsyncSession, E, HandlerContext], Awaitable[None]]


class Unheard(Exception):
    """An event of a kind with no handler that nobody declared as unheard: a bug to park."""


class Handlers:
    """The registry: the handlers of each kind, by name, and the kinds nobody listens to yet."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Handler[Any]]] = {}
        self._unheard: set[str] = set()

    def on(self, event_class: type[E], name: str) -> Callable[[Handler[E]], Handler[E]]:
        """Registers the decorated function as the handler ``name`` of ``event_class``. The
        name is recorded with each run: keep it when renaming the function."""

        def register(handler: Handler[E]) -> Handler[E]:
            kind = event_class.kind()
            named = self._by_kind.setdefault(kind, {})
            if kind in self._unheard:
                raise ValueError(f"{kind} is declared as heard by nobody")
            if name in named:
                raise ValueError(f"{kind} already has a handler called {name!r}")
            named[name] = handler
            return handler

        return register

    def nobody_listens_yet(self, *event_classes: type[Event]) -> None:
        """Declares kinds that are emitted but have no handler yet: they are simply done."""
        for event_class in event_classes:
            if event_class.kind() in self._by_kind:
                raise ValueError(f"{event_class.kind()} has handlers")
            self._unheard.add(event_class.kind())

    def of(self, kind: str) -> Mapping[str, Handler[Any]]:
        """The handlers of ``kind`` by name; Unheard for a kind nobody declared."""
        if kind in self._by_kind:
            return self._by_kind[kind]
        if kind in self._unheard:
            return {}
        raise Unheard(f"no handler is registered for {kind} events")


HANDLERS = Handlers()

# Emitted, and kept as a record, but nobody needs to hear of them yet: no mail is sent today.
# In-app notifications, payouts and search-cache purges will listen here.
HANDLERS.nobody_listens_yet(BookingCreated, BookingModified, PaymentAuthorized)
# Live delivery of in-app notifications (subscriptions) will listen here.
HANDLERS.nobody_listens_yet(NotificationCreated)


# Accounts: the one-time link is minted as its mail goes out, in the transaction that records
# the mail sent. A mail whose transaction then fails carries a link that never worked; the retry
# mails a fresh one. (No Message-ID: the two mails differ, and the second must not be dropped.)


async def _mail_link(
    context: HandlerContext, issued: tuple[User, str] | None, subject: str, text: str
) -> None:
    """Mails the user their one-time link; ``text`` has ``{link_base}`` and ``{token}``."""
    if issued is None:
        return
    user, token = issued
    body = text.format(link_base=context.frontend_url, token=token)
    await context.mailer.send(
        Email(to=user.email, subject=subject, text=f"Hello {user.first_name},\n\n{body}")
    )


@HANDLERS.on(EmailVerificationRequested, "mail")
async def mail_email_verification(
    session: AsyncSession, event: EmailVerificationRequested, context: HandlerContext
) -> None:
    await _mail_link(
        context,
        await accounts.issue_email_verification(session, user_id=event.user_id),
        "Confirm your email for Roost",
        "Confirm that this is your address (the link works for 7 days):\n\n"
        "{link_base}/verify-email?token={token}\n",
    )


@HANDLERS.on(PasswordResetRequested, "mail")
async def mail_password_reset(
    session: AsyncSession, event: PasswordResetRequested, context: HandlerContext
) -> None:
    await _mail_link(
        context,
        await accounts.issue_password_reset(session, email=event.email),
        "Reset your Roost password",
        "Someone (we hope you) asked to reset the password of your Roost account.\n"
        "Choose a new one here within the hour:\n\n"
        "{link_base}/reset-password?token={token}\n\n"
        "If it was not you, ignore this message: your password stays as it is.\n",
    )


# Bookings and payments.


@dataclass(frozen=True)
class _Stay:
    booking: Booking
    listing: Listing
    guest: User
    host: User


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


def _dates(stay: _Stay) -> str:
    booking = stay.booking
    return f"{booking.check_in:%d %b %Y} to {booking.check_out:%d %b %Y}"


async def _tell(
    context: HandlerContext, user: User, subject: str, text: str, *, audience: str
) -> None:
    await context.mailer.send(
        Email(
            to=user.email,
            subject=subject,
            text=f"Hello {user.first_name},\n\n{text}\n\n{context.frontend_url}/trips\n",
            message_id=f"<event-{context.event_id}-{audience}@roost>",
        )
    )


@HANDLERS.on(BookingRequested, "mail")
async def mail_booking_requested(
    session: AsyncSession, event: BookingRequested, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    await _tell(
        context,
        stay.host,
        f"New booking request for {stay.listing.title}",
        f"{stay.guest.first_name} asks to stay {_dates(stay)}. Answer within 24 hours.",
        audience="host",
    )


@HANDLERS.on(BookingConfirmed, "mail")
async def mail_booking_confirmed(
    session: AsyncSession, event: BookingConfirmed, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    await _tell(
        context,
        stay.guest,
        f"Your stay at {stay.listing.title} is confirmed",
        f"You are booked {_dates(stay)}.",
        audience="guest",
    )
    await _tell(
        context,
        stay.host,
        f"New reservation at {stay.listing.title}",
        f"{stay.guest.first_name} stays {_dates(stay)}.",
        audience="host",
    )


@HANDLERS.on(BookingCanceled, "mail")
async def mail_booking_canceled(
    session: AsyncSession, event: BookingCanceled, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    refund = Money(event.refund_minor, stay.booking.currency).formatted()
    reason = stay.booking.cancel_reason or "No reason was given."
    await _tell(
        context,
        stay.guest,
        f"Your booking at {stay.listing.title} is canceled",
        f"The stay {_dates(stay)} is canceled. {reason} Refund: {refund}.",
        audience="guest",
    )
    await _tell(
        context,
        stay.host,
        f"A booking at {stay.listing.title} is canceled",
        f"The stay {_dates(stay)} is canceled; those nights are free again.",
        audience="host",
    )


@HANDLERS.on(BookingCompleted, "mail")
async def mail_booking_completed(
    session: AsyncSession, event: BookingCompleted, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    await _tell(
        context,
        stay.guest,
        f"How was {stay.listing.title}?",
        "Thank you for staying. A review helps the next guests choose.",
        audience="guest",
    )


@HANDLERS.on(PaymentFailed, "mail")
async def mail_payment_failed(
    session: AsyncSession, event: PaymentFailed, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    await _tell(
        context,
        stay.guest,
        "Your payment did not go through",
        f"Your nights at {stay.listing.title} stay held for a few minutes: try another card.",
        audience="guest",
    )


# In-app notifications (services/notifications.py): one per event and recipient, however often
# the event is handled.


def _source(context: HandlerContext) -> notifications.Source:
    return notifications.Source(context.event_id, context.now)


@HANDLERS.on(BookingRequested, "notify")
async def notify_booking_requested(
    session: AsyncSession, event: BookingRequested, context: HandlerContext
) -> None:
    await notifications.booking_requested(
        session, booking_id=event.booking_id, source=_source(context)
    )


@HANDLERS.on(BookingConfirmed, "notify")
async def notify_booking_confirmed(
    session: AsyncSession, event: BookingConfirmed, context: HandlerContext
) -> None:
    await notifications.booking_confirmed(
        session, booking_id=event.booking_id, source=_source(context)
    )


@HANDLERS.on(BookingCanceled, "notify")
async def notify_booking_canceled(
    session: AsyncSession, event: BookingCanceled, context: HandlerContext
) -> None:
    await notifications.booking_canceled(
        session,
        booking_id=event.booking_id,
        by=event.by,
        refund_minor=event.refund_minor,
        source=_source(context),
    )


@HANDLERS.on(BookingCompleted, "notify")
async def notify_booking_completed(
    session: AsyncSession, event: BookingCompleted, context: HandlerContext
) -> None:
    await notifications.booking_completed(
        session, booking_id=event.booking_id, source=_source(context)
    )


@HANDLERS.on(PaymentSucceeded, "notify")
async def notify_payment_succeeded(
    session: AsyncSession, event: PaymentSucceeded, context: HandlerContext
) -> None:
    await notifications.payment_succeeded(
        session,
        payment_id=event.payment_id,
        booking_id=event.booking_id,
        amount_minor=event.amount_minor,
        source=_source(context),
    )


@HANDLERS.on(PaymentFailed, "notify")
async def notify_payment_failed(
    session: AsyncSession, event: PaymentFailed, context: HandlerContext
) -> None:
    await notifications.payment_failed(
        session, booking_id=event.booking_id, reason=event.reason, source=_source(context)
    )


@HANDLERS.on(PaymentRefunded, "notify")
async def notify_payment_refunded(
    session: AsyncSession, event: PaymentRefunded, context: HandlerContext
) -> None:
    await notifications.payment_refunded(
        session,
        payment_id=event.payment_id,
        booking_id=event.booking_id,
        amount_minor=event.amount_minor,
        source=_source(context),
    )


@HANDLERS.on(PayoutSent, "notify")
async def notify_payout_sent(
    session: AsyncSession, event: PayoutSent, context: HandlerContext
) -> None:
    await notifications.payout_sent(
        session,
        booking_id=event.booking_id,
        host_id=event.host_id,
        amount_minor=event.amount_minor,
        currency=event.currency,
        source=_source(context),
    )


@HANDLERS.on(ReviewReceived, "notify")
async def notify_review_received(
    session: AsyncSession, event: ReviewReceived, context: HandlerContext
) -> None:
    await notifications.review_received(session, review_id=event.review_id, source=_source(context))


@HANDLERS.on(ReviewPublished, "notify")
async def notify_review_published(
    session: AsyncSession, event: ReviewPublished, context: HandlerContext
) -> None:
    await notifications.review_published(
        session, review_id=event.review_id, source=_source(context)
    )


@HANDLERS.on(ReviewResponded, "notify")
async def notify_review_responded(
    session: AsyncSession, event: ReviewResponded, context: HandlerContext
) -> None:
    await notifications.review_responded(
        session, review_id=event.review_id, source=_source(context)
    )
