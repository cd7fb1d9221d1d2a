"""Who hears about what: the handlers of outbox events, run by the worker (app/worker.py).

A kind of event may have several handlers (mail now; in-app notifications, payouts and
search-cache purges later), each under a name of its own. The worker runs each handler in a
transaction of its own that records it done under that name, so what a handler writes to the
database happens once, and a handler that fails is retried without repeating the others. Mail
about bookings carries a Message-ID made from the event, so a copy sent again after a crash
can be recognised as the same message.

News of bookings and payments goes by email and text message only to users who chose that
channel (``notification_channels``), in their language where the templates have it
(services/mail_templates.py). A provider that is down makes the handler fail, so the worker tries
again with its backoff; one that refuses a message for good is logged and not retried.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from auth.crypto import FieldCipher
from db.models import Booking, CalendarImport, Dispute, Listing, User
from gateways.email import Email, Mailer, Undeliverable
from gateways.pubsub import PubSub
from gateways.sms import Sms, Texter
from services import accounts, live, messages, notifications, phone_verification
from services.events import (
    BookingCanceled,
    BookingCompleted,
    BookingConfirmed,
    BookingCreated,
    BookingModified,
    BookingRequested,
    CalendarConflicted,
    CalendarImportAdded,
    DisputeOpened,
    DisputeResolved,
    EmailVerificationRequested,
    Event,
    ListingApproved,
    ListingFlagged,
    MessageMailDue,
    MessageReceived,
    NotificationCreated,
    PasswordResetRequested,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    PayoutSent,
    PhoneVerificationRequested,
    ReviewPublished,
    ReviewReceived,
    ReviewResponded,
)
from services.mail_templates import render_email, render_sms
from services.money import Money

log = logging.getLogger("roost.notices")


@dataclass(frozen=True)
class HandlerContext:
    event_id: int
    mailer: Mailer
    frontend_url: str
    now: datetime
    texter: Texter | None = None
    # Decrypts phone numbers for text messages.
    cipher: FieldCipher | None = None
    # Live delivery to connected clients; none in processes nobody subscribes through.
    pubsub: PubSub | None = None


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


# Accounts: the one-time link is minted as its mail goes out, in the transaction that records
# the mail sent. A mail whose transaction then fails carries a link that never worked; the retry
# mails a fresh one. (No Message-ID: the two mails differ, and the second must not be dropped.)


async def _mail_link(
    context: HandlerContext, issued: tuple[User, str] | None, template: str, path: str
) -> None:
    """Mails the user their one-time link to ``path`` on the frontend, whatever their channels."""
    if issued is None:
        return
    user, token = issued
    link = f"{context.frontend_url}{path}?token={token}"
    rendered = render_email(template, user.language, first_name=user.first_name, link=link)
    email = Email(to=user.email, subject=rendered.subject, text=rendered.text, html=rendered.html)
    try:
        await context.mailer.send(email)
    except Undeliverable as refusal:
        log.warning("mail of event %s to user %s refused: %s", context.event_id, user.id, refusal)


@HANDLERS.on(EmailVerificationRequested, "mail")
async def mail_email_verification(
    session: AsyncSession, event: EmailVerificationRequested, context: HandlerContext
) -> None:
    issued = await accounts.issue_email_verification(session, user_id=event.user_id)
    await _mail_link(context, issued, "email_verification", "/verify-email")


@HANDLERS.on(PasswordResetRequested, "mail")
async def mail_password_reset(
    session: AsyncSession, event: PasswordResetRequested, context: HandlerContext
) -> None:
    issued = await accounts.issue_password_reset(session, email=event.email)
    await _mail_link(context, issued, "password_reset", "/reset-password")


# Phone verification: the code is minted as its text message goes out, in the transaction that
# records it sent, as the one-time links above are; a retry texts a fresh code.


@HANDLERS.on(PhoneVerificationRequested, "sms")
async def text_phone_verification(
    session: AsyncSession, event: PhoneVerificationRequested, context: HandlerContext
) -> None:
    """Texts a new code to the user's number, whatever their channels: they asked for it."""
    if context.texter is None or context.cipher is None:
        raise RuntimeError("text messages need a texter and the field cipher")
    issued = await phone_verification.issue_code(
        session, user_id=event.user_id, now=context.now, cipher=context.cipher
    )
    if issued is None:
        return
    user, code = issued
    phone = _phone_of(context.cipher, user)
    if phone is None:
        return
    minutes = int(phone_verification.CODE_LIFETIME.total_seconds() // 60)
    body = render_sms("phone_verification", user.language, code=code, minutes=minutes)
    try:
        await context.texter.send(Sms(to=phone, body=body, confidential=True))
    except Undeliverable as refusal:
        log.warning("verification code of user %s refused: %s", user.id, refusal)


def _phone_of(cipher: FieldCipher, user: User) -> str | None:
    """The number on file in the clear; None (and an error logged) when it does not decrypt."""
    if user.phone_encrypted is None:
        return None
    # Must match schema.accounts.phone_cipher_context, which encrypted the number.
    phone = cipher.decrypt(user.phone_encrypted, context=f"user_account.phone_encrypted:{user.id}")
    if phone is None:
        log.error("user %s: the phone number on file does not decrypt", user.id)
    return phone


# Bookings and payments: each recipient and channel is a handler of its own, so a retry after
# one recipient's provider failed never sends again what another already received.

EMAIL, SMS = "EMAIL", "SMS"


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


def _stay_values(stay: _Stay, user: User, context: HandlerContext) -> dict[str, object]:
    return {
        "first_name": user.first_name,
        "guest_name": stay.guest.first_name,
        "title": stay.listing.title,
        "check_in": stay.booking.check_in,
        "check_out": stay.booking.check_out,
        "link": f"{context.frontend_url}/trips",
    }


async def _mail(
    context: HandlerContext, user: User, template: str, values: dict[str, object], *, audience: str
) -> None:
    """Mails ``template`` to ``user`` if they take news by email; a refusal for good is logged."""
    if EMAIL not in user.notification_channels:
        return
    rendered = render_email(template, user.language, **values)
    email = Email(
        to=user.email,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=f"<event-{context.event_id}-{audience}@roost>",
    )
    try:
        await context.mailer.send(email)
    except Undeliverable as refusal:
        log.warning("mail of event %s to user %s refused: %s", context.event_id, user.id, refusal)


async def _text(
    context: HandlerContext, user: User, template: str, values: dict[str, object]
) -> None:
    """Texts ``template`` to ``user`` if they take news by SMS and the number on file is
    verified (services/phone_verification.py)."""
    if SMS not in user.notification_channels or user.phone_encrypted is None:
        return
    if user.phone_verified_at is None:
        return
    if context.texter is None or context.cipher is None:
        raise RuntimeError("text messages need a texter and the field cipher")
    # Must match schema.accounts.phone_cipher_context, which encrypted the number.
    phone = context.cipher.decrypt(
        user.phone_encrypted, context=f"user_account.phone_encrypted:{user.id}"
    )
    if phone is None:
        log.error("user %s: the phone number on file does not decrypt", user.id)
        return
    try:
        await context.texter.send(Sms(to=phone, body=render_sms(template, user.language, **values)))
    except Undeliverable as refusal:
        log.warning("SMS of event %s to user %s refused: %s", context.event_id, user.id, refusal)


@HANDLERS.on(BookingRequested, "mail")
async def mail_booking_requested(
    session: AsyncSession, event: BookingRequested, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _stay_values(stay, stay.host, context)
    await _mail(context, stay.host, "booking_requested_host", values, audience="host")


@HANDLERS.on(BookingConfirmed, "mail")
async def mail_booking_confirmed(
    session: AsyncSession, event: BookingConfirmed, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _stay_values(stay, stay.guest, context)
    await _mail(context, stay.guest, "booking_confirmed_guest", values, audience="guest")


@HANDLERS.on(BookingConfirmed, "mail_host")
async def mail_booking_confirmed_to_host(
    session: AsyncSession, event: BookingConfirmed, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _stay_values(stay, stay.host, context)
    await _mail(context, stay.host, "booking_confirmed_host", values, audience="host")


@HANDLERS.on(BookingConfirmed, "sms")
async def text_booking_confirmed(
    session: AsyncSession, event: BookingConfirmed, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    await _text(
        context, stay.guest, "booking_confirmed_guest", _stay_values(stay, stay.guest, context)
    )


@HANDLERS.on(BookingConfirmed, "sms_host")
async def text_booking_confirmed_to_host(
    session: AsyncSession, event: BookingConfirmed, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    await _text(
        context, stay.host, "booking_confirmed_host", _stay_values(stay, stay.host, context)
    )


def _canceled_values(
    stay: _Stay, user: User, event: BookingCanceled, context: HandlerContext
) -> dict[str, object]:
    return {
        **_stay_values(stay, user, context),
        "refund": Money(event.refund_minor, stay.booking.currency),
        "reason": stay.booking.cancel_reason,
    }


@HANDLERS.on(BookingCanceled, "mail")
async def mail_booking_canceled(
    session: AsyncSession, event: BookingCanceled, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _canceled_values(stay, stay.guest, event, context)
    await _mail(context, stay.guest, "booking_canceled_guest", values, audience="guest")


@HANDLERS.on(BookingCanceled, "mail_host")
async def mail_booking_canceled_to_host(
    session: AsyncSession, event: BookingCanceled, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _canceled_values(stay, stay.host, event, context)
    await _mail(context, stay.host, "booking_canceled_host", values, audience="host")


@HANDLERS.on(BookingCanceled, "sms")
async def text_booking_canceled(
    session: AsyncSession, event: BookingCanceled, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _canceled_values(stay, stay.guest, event, context)
    await _text(context, stay.guest, "booking_canceled_guest", values)


@HANDLERS.on(BookingCanceled, "sms_host")
async def text_booking_canceled_to_host(
    session: AsyncSession, event: BookingCanceled, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _canceled_values(stay, stay.host, event, context)
    await _text(context, stay.host, "booking_canceled_host", values)


@HANDLERS.on(BookingCompleted, "mail")
async def mail_booking_completed(
    session: AsyncSession, event: BookingCompleted, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _stay_values(stay, stay.guest, context)
    await _mail(context, stay.guest, "booking_completed_guest", values, audience="guest")


@HANDLERS.on(PaymentFailed, "mail")
async def mail_payment_failed(
    session: AsyncSession, event: PaymentFailed, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = _stay_values(stay, stay.guest, context)
    await _mail(context, stay.guest, "payment_failed", values, audience="guest")


@HANDLERS.on(PaymentRefunded, "mail")
async def mail_payment_refunded(
    session: AsyncSession, event: PaymentRefunded, context: HandlerContext
) -> None:
    stay = await _stay(session, event.booking_id)
    values = {
        **_stay_values(stay, stay.guest, context),
        "amount": Money(event.amount_minor, stay.booking.currency),
    }
    await _mail(context, stay.guest, "payment_refunded", values, audience="guest")


# Messages: the recipient hears by mail of a message still unread when its MessageMailDue falls
# due (services/messages.unread_news), if they take news by email.


@HANDLERS.on(MessageMailDue, "mail")
async def mail_message_received(
    session: AsyncSession, event: MessageMailDue, context: HandlerContext
) -> None:
    news = await messages.unread_news(
        session, message_id=event.message_id, recipient_id=event.recipient_id
    )
    if news is None:
        return
    values: dict[str, object] = {
        "first_name": news.recipient.first_name,
        "sender_name": news.sender.first_name,
        "title": news.listing.title,
        "excerpt": messages.first_words(news.message.body),
        "link": f"{context.frontend_url}{messages.thread_path(news.thread.id)}",
    }
    await _mail(context, news.recipient, "message_received", values, audience="recipient")


async def _mail_host_of(
    session: AsyncSession, context: HandlerContext, listing_id: int, template: str, reason: str
) -> None:
    listing = await session.get_one(Listing, listing_id)
    host = await session.get_one(User, listing.host_id)
    values: dict[str, object] = {
        "first_name": host.first_name,
        "title": listing.title,
        "reason": reason,
        "link": f"{context.frontend_url}/host/listings",
    }
    await _mail(context, host, template, values, audience="host")


@HANDLERS.on(ListingApproved, "mail")
async def mail_listing_approved(
    session: AsyncSession, event: ListingApproved, context: HandlerContext
) -> None:
    await _mail_host_of(session, context, event.listing_id, "listing_approved", "")


@HANDLERS.on(ListingFlagged, "mail")
async def mail_listing_flagged(
    session: AsyncSession, event: ListingFlagged, context: HandlerContext
) -> None:
    await _mail_host_of(session, context, event.listing_id, "listing_flagged", event.reason)


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


@HANDLERS.on(DisputeOpened, "notify")
async def notify_dispute_opened(
    session: AsyncSession, event: DisputeOpened, context: HandlerContext
) -> None:
    await notifications.dispute_opened(
        session, dispute_id=event.dispute_id, booking_id=event.booking_id, source=_source(context)
    )


@HANDLERS.on(DisputeResolved, "notify")
async def notify_dispute_resolved(
    session: AsyncSession, event: DisputeResolved, context: HandlerContext
) -> None:
    await notifications.dispute_resolved(
        session, dispute_id=event.dispute_id, booking_id=event.booking_id, source=_source(context)
    )


async def _mail_dispute(
    session: AsyncSession,
    event: DisputeOpened | DisputeResolved,
    context: HandlerContext,
    template: str,
    *,
    to_host: bool,
) -> None:
    stay = await _stay(session, event.booking_id)
    user = stay.host if to_host else stay.guest
    dispute = await session.get_one(Dispute, event.dispute_id)
    values = {**_stay_values(stay, user, context), "reason": dispute.resolution_note or ""}
    await _mail(context, user, template, values, audience="host" if to_host else "guest")


@HANDLERS.on(DisputeOpened, "mail")
async def mail_dispute_opened(
    session: AsyncSession, event: DisputeOpened, context: HandlerContext
) -> None:
    await _mail_dispute(session, event, context, "dispute_opened", to_host=False)


@HANDLERS.on(DisputeOpened, "mail_host")
async def mail_dispute_opened_to_host(
    session: AsyncSession, event: DisputeOpened, context: HandlerContext
) -> None:
    await _mail_dispute(session, event, context, "dispute_opened", to_host=True)


@HANDLERS.on(DisputeResolved, "mail")
async def mail_dispute_resolved(
    session: AsyncSession, event: DisputeResolved, context: HandlerContext
) -> None:
    await _mail_dispute(session, event, context, "dispute_resolved", to_host=False)


@HANDLERS.on(DisputeResolved, "mail_host")
async def mail_dispute_resolved_to_host(
    session: AsyncSession, event: DisputeResolved, context: HandlerContext
) -> None:
    await _mail_dispute(session, event, context, "dispute_resolved", to_host=True)


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


@HANDLERS.on(ListingApproved, "notify")
async def notify_listing_approved(
    session: AsyncSession, event: ListingApproved, context: HandlerContext
) -> None:
    await notifications.listing_moderated(
        session, listing_id=event.listing_id, reason=None, source=_source(context)
    )


@HANDLERS.on(ListingFlagged, "notify")
async def notify_listing_flagged(
    session: AsyncSession, event: ListingFlagged, context: HandlerContext
) -> None:
    await notifications.listing_moderated(
        session, listing_id=event.listing_id, reason=event.reason, source=_source(context)
    )


# Committed, it rings the worker, whose pass fetches the feeds due (this new one among them)
# outside any transaction: nothing is left for a handler to do.
HANDLERS.nobody_listens_yet(CalendarImportAdded)


@HANDLERS.on(CalendarConflicted, "notify")
async def notify_calendar_conflicted(
    session: AsyncSession, event: CalendarConflicted, context: HandlerContext
) -> None:
    name = await session.scalar(
        select(CalendarImport.name).where(CalendarImport.id == event.import_id)
    )
    await notifications.calendar_conflicted(
        session,
        listing_id=event.listing_id,
        import_name=name or "another calendar",
        first_night=event.first_night,
        nights=event.nights,
        source=_source(context),
    )


@HANDLERS.on(MessageReceived, "notify")
async def notify_message_received(
    session: AsyncSession, event: MessageReceived, context: HandlerContext
) -> None:
    await notifications.message_received(
        session,
        message_id=event.message_id,
        recipient_id=event.recipient_id,
        source=_source(context),
    )


# Live delivery to connected clients (GraphQL subscriptions), once the change is committed.


@HANDLERS.on(NotificationCreated, "live")
async def deliver_notification(
    session: AsyncSession, event: NotificationCreated, context: HandlerContext
) -> None:
    if context.pubsub is not None:
        await live.publish_notification(
            session, context.pubsub, notification_id=event.notification_id, user_id=event.user_id
        )


@HANDLERS.on(MessageReceived, "live")
async def deliver_message(
    session: AsyncSession, event: MessageReceived, context: HandlerContext
) -> None:
    if context.pubsub is not None:
        await live.publish_message(session, context.pubsub, message_id=event.message_id)


BookingChange = (
    BookingCreated
    | BookingRequested
    | BookingConfirmed
    | BookingModified
    | BookingCanceled
    | BookingCompleted
    | PaymentAuthorized
    | PaymentSucceeded
    | PaymentFailed
    | PaymentRefunded
)


async def announce_booking_change(
    session: AsyncSession, event: BookingChange, context: HandlerContext
) -> None:
    if context.pubsub is not None:
        await live.publish_booking_change(context.pubsub, booking_id=event.booking_id)


for _change in get_args(BookingChange):
    HANDLERS.on(_change, "live")(announce_booking_change)
