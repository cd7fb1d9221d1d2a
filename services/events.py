"""The events of the transactional outbox: one frozen dataclass per kind, with its payload.

A change that others must hear about emits its event in the change's own transaction; the
worker hands each committed event to every handler of its kind (services/event_handlers.py).
The kind is the class name; the payload is the dataclass's fields, as JSON.
"""

import dataclasses
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any, ClassVar, Self, get_type_hints

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OutboxEvent
from db.states import Party


class UnknownEvent(Exception):
    """An event row whose kind or payload no event class describes."""


@dataclasses.dataclass(frozen=True)
class Event:
    KINDS: ClassVar[dict[str, type["Event"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__ in Event.KINDS:
            raise TypeError(f"two events are called {cls.__name__}")
        Event.KINDS[cls.__name__] = cls

    @classmethod
    def kind(cls) -> str:
        return cls.__name__

    def payload(self) -> dict[str, Any]:
        return {
            name: value.isoformat() if isinstance(value, date) else value
            for name, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Self:
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        try:
            for field in dataclasses.fields(cls):
                value = payload[field.name]
                kind = hints[field.name]
                if kind is date and isinstance(value, str):
                    value = date.fromisoformat(value)
                elif isinstance(kind, type) and issubclass(kind, Enum):  # a state, a party
                    value = kind(value)
                values[field.name] = value
        except (KeyError, ValueError) as error:
            raise UnknownEvent(f"{cls.__name__} without a valid {error}") from None
        return cls(**values)


def decode(kind: str, payload: dict[str, Any]) -> Event:
    """The event a stored row holds; UnknownEvent when no class is called ``kind``."""
    event_class = Event.KINDS.get(kind)
    if event_class is None:
        raise UnknownEvent(f"no event is called {kind!r}")
    return event_class.from_payload(payload)


def emit(
    session: AsyncSession, event: Event, *, now: datetime, delay: timedelta = timedelta(0)
) -> None:
    """Records ``event``, to be handled once the transaction commits and ``delay`` has passed
    (its handlers then look at the world as it is by then)."""
    if Event.KINDS.get(event.kind()) is not type(event):
        raise UnknownEvent(f"{type(event).__qualname__} is not a declared event")
    if delay < timedelta(0):
        raise ValueError("an event cannot be due before it happened")
    session.add(OutboxEvent(kind=event.kind(), payload=event.payload(), available_at=now + delay))


@dataclasses.dataclass(frozen=True)
class OutboxBacklog:
    """How far behind the workers are: the age of the oldest event due and waiting (0 when
    none waits), how many are due, and how many were parked for a person to look at."""

    oldest_due_seconds: float
    due: int
    parked: int


async def outbox_backlog(session: AsyncSession, *, now: datetime) -> OutboxBacklog:
    """One query. The waiting events are read through their partial index (ix_outbox_event_due);
    parked ones have no index of their own, so counting them scans the table (kept small when
    processed events are pruned; an index ``WHERE parked_at IS NOT NULL`` would make it free)."""
    row = (
        await session.execute(
            text(
                """
                SELECT
                    (SELECT min(available_at) FROM outbox_event
                     WHERE processed_at IS NULL AND parked_at IS NULL AND available_at <= :now),
                    (SELECT count(*) FROM outbox_event
                     WHERE processed_at IS NULL AND parked_at IS NULL AND available_at <= :now),
                    (SELECT count(*) FROM outbox_event
                     WHERE parked_at IS NOT NULL AND processed_at IS NULL)
                """
            ),
            {"now": now},
        )
    ).one()
    oldest, due, parked = row
    lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return OutboxBacklog(oldest_due_seconds=lag, due=due, parked=parked)


# Accounts. Their mail carries a one-time link, minted by the handler when it sends: a secret
# token never rests in the outbox.


@dataclasses.dataclass(frozen=True)
class EmailVerificationRequested(Event):
    user_id: int


@dataclasses.dataclass(frozen=True)
class PasswordResetRequested(Event):
    """Written for any address asked about, so the request does the same work whether an
    account has it; the handler mails only an active account."""

    email: str


@dataclasses.dataclass(frozen=True)
class PhoneVerificationRequested(Event):
    """The handler mints the code as it texts it: the code never rests in the outbox."""

    user_id: int


# Bookings.


@dataclasses.dataclass(frozen=True)
class BookingCreated(Event):
    booking_id: int


@dataclasses.dataclass(frozen=True)
class BookingRequested(Event):
    """Paid, and waiting for the host's answer."""

    booking_id: int


@dataclasses.dataclass(frozen=True)
class BookingConfirmed(Event):
    booking_id: int


@dataclasses.dataclass(frozen=True)
class BookingModified(Event):
    booking_id: int
    check_in: date
    check_out: date
    difference_minor: int


@dataclasses.dataclass(frozen=True)
class BookingCanceled(Event):
    booking_id: int
    by: Party
    refund_minor: int


@dataclasses.dataclass(frozen=True)
class BookingCompleted(Event):
    booking_id: int


# Payments.


@dataclasses.dataclass(frozen=True)
class PaymentAuthorized(Event):
    payment_id: int
    booking_id: int


@dataclasses.dataclass(frozen=True)
class PaymentSucceeded(Event):
    payment_id: int
    booking_id: int
    amount_minor: int


@dataclasses.dataclass(frozen=True)
class PaymentFailed(Event):
    payment_id: int
    booking_id: int
    reason: str | None = None  # the provider's words


@dataclasses.dataclass(frozen=True)
class PaymentRefunded(Event):
    payment_id: int
    booking_id: int
    amount_minor: int


# Payouts.


@dataclasses.dataclass(frozen=True)
class PayoutSent(Event):
    """The provider made the transfer to the host."""

    payout_id: int
    booking_id: int
    host_id: int
    amount_minor: int
    currency: str


# Disputes.


@dataclasses.dataclass(frozen=True)
class DisputeOpened(Event):
    """A booking's guest or host opened a dispute: both sides are told."""

    dispute_id: int
    booking_id: int


@dataclasses.dataclass(frozen=True)
class DisputeResolved(Event):
    """An admin resolved a dispute: both sides are told how."""

    dispute_id: int
    booking_id: int


# Reviews.


@dataclasses.dataclass(frozen=True)
class ReviewReceived(Event):
    """Written, not yet published: its subject may be told to write theirs."""

    review_id: int
    booking_id: int
    subject_id: int


@dataclasses.dataclass(frozen=True)
class ReviewPublished(Event):
    review_id: int
    booking_id: int
    listing_id: int


@dataclasses.dataclass(frozen=True)
class ReviewResponded(Event):
    """The host answered a review of their stay: its author may be told."""

    review_id: int
    author_id: int


# Listings.


@dataclasses.dataclass(frozen=True)
class ListingApproved(Event):
    """An admin approved the listing: its host may be told."""

    listing_id: int
    host_id: int


@dataclasses.dataclass(frozen=True)
class ListingFlagged(Event):
    """An admin flagged the listing, out of search until approved: its host is told why."""

    listing_id: int
    host_id: int
    reason: str


# Calendar sync.


@dataclasses.dataclass(frozen=True)
class CalendarImportAdded(Event):
    """A host added another site's calendar: committing it rings the worker, whose pass
    fetches every feed due, this one first (services/calendar_imports.py)."""

    import_id: int
    listing_id: int


@dataclasses.dataclass(frozen=True)
class CalendarConflicted(Event):
    """An imported calendar shows nights booked on Roost: they stay booked, its host is told."""

    import_id: int
    listing_id: int
    first_night: date
    nights: int


# Messages.


@dataclasses.dataclass(frozen=True)
class MessageReceived(Event):
    """A message for ``recipient_id``: they may be told in the app, or by mail if away."""

    message_id: int
    thread_id: int
    sender_id: int
    recipient_id: int


@dataclasses.dataclass(frozen=True)
class MessageMailDue(Event):
    """Emitted with a message, due a while later: if ``recipient_id`` has still not read it
    by then, they are away, and are mailed about it."""

    message_id: int
    thread_id: int
    recipient_id: int


# Notifications.


@dataclasses.dataclass(frozen=True)
class NotificationCreated(Event):
    """A user has a new in-app notification: what live delivery to their devices listens to."""

    notification_id: int
    user_id: int
