"""Providers' word on payments (webhook events, M-Pesa's callbacks), each applied once: a
provider's registry of one small handler per event type decides what an event means; this
records it and calls the handler.

An event is recorded in the transaction that applies it; the unique (provider, event_id) lets
one delivery of it through, so a redelivery, or ten at once, change nothing more. A handler
only touches the database: a provider call it asks for is left REQUESTED for a worker.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, Text, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth.rules import is_admin
from db.models import Payment, PaymentOperation, Payout, ProviderEvent
from db.rows import Actor
from services import cursors
from services.bookings import BookingRules
from services.errors import Forbidden, InvalidInput

log = logging.getLogger("roost.webhooks")

Handler = Callable[[AsyncSession, Mapping[str, Any], datetime, BookingRules], Awaitable[bool]]
"""Applies an event's object; answers whether it concerned a payment of ours."""


class Outcome(StrEnum):
    APPLIED = "APPLIED"
    REPLAYED = "REPLAYED"  # seen before: nothing done
    IGNORED = "IGNORED"  # a type no handler knows
    UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT"


async def record(
    session: AsyncSession,
    *,
    provider: str,
    event_id: str,
    type: str,
    payload: Mapping[str, Any],
    now: datetime,
) -> int | None:
    """Records an event as received; None when it was before (a second delivery waits here
    for the first one's transaction, which applied it)."""
    recorded: int | None = await session.scalar(
        insert(ProviderEvent)
        .values(
            provider=provider,
            event_id=event_id,
            type=type,
            received_at=now,
            payload=dict(payload),
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(ProviderEvent.id)
    )
    return recorded


async def processed(session: AsyncSession, recorded: int, *, now: datetime) -> None:
    await session.execute(
        update(ProviderEvent).where(ProviderEvent.id == recorded).values(processed_at=now)
    )


async def noted(session: AsyncSession, recorded: int, outcome: Outcome) -> Outcome:
    """Keeps what came of the event, for the admins' event log; answers it."""
    await session.execute(
        update(ProviderEvent).where(ProviderEvent.id == recorded).values(outcome=outcome)
    )
    return outcome


async def apply_event(
    session: AsyncSession,
    *,
    provider: str,
    event_id: str,
    event_type: str,
    resource: Mapping[str, Any],
    payload: Mapping[str, Any],
    handlers: Mapping[str, Handler],
    now: datetime,
    rules: BookingRules,
) -> Outcome:
    """Records a verified event (``payload`` whole, ``resource`` the object it is about) and
    applies it with its type's handler, unless it was seen before. An event of a type no
    handler knows is recorded as seen and left unprocessed."""
    recorded = await record(
        session, provider=provider, event_id=event_id, type=event_type, payload=payload, now=now
    )
    if recorded is None:
        return Outcome.REPLAYED
    handler = handlers.get(event_type)
    if handler is None:
        return await noted(session, recorded, Outcome.IGNORED)
    known = await handler(session, resource, now, rules)
    await processed(session, recorded, now=now)
    if not known:
        log.warning("%s event %s (%s): no payment of ours", provider, event_id, event_type)
        return await noted(session, recorded, Outcome.UNKNOWN_PAYMENT)
    return await noted(session, recorded, Outcome.APPLIED)


# The log, for admins.

MAX_PAGE_SIZE = 100


class ProviderEventRow(NamedTuple):
    """What the log shows of an event: never its payload, which may carry the payer's
    details (a phone number, an email) beyond what admins see elsewhere."""

    id: int
    provider: str
    event_id: str
    type: str
    received_at: datetime
    processed_at: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class EventPage:
    events: list[ProviderEventRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


async def _names_of_payment(session: AsyncSession, payment_id: int) -> list[str]:
    """What a provider's event about the payment carries: our id in its metadata, or the
    provider's ids for the payment and for its movements (captures, refunds)."""
    names = [f'"payment_id": "{payment_id}"']
    reference = await session.scalar(
        select(Payment.provider_reference).where(Payment.id == payment_id)
    )
    operations = await session.scalars(
        select(PaymentOperation.provider_reference).where(
            PaymentOperation.payment_id == payment_id,
            PaymentOperation.provider_reference.is_not(None),
        )
    )
    return names + [f'"{name}"' for name in {reference, *operations} if name]


async def _names_of_payout(session: AsyncSession, payout_id: int) -> list[str]:
    transfer = await session.scalar(
        select(Payout.provider_transfer_id).where(Payout.id == payout_id)
    )
    return [f'"payout_id": "{payout_id}"', *([f'"{transfer}"'] if transfer else [])]


async def list_events(
    session: AsyncSession,
    *,
    admin: Actor,
    provider: str | None = None,
    payment_id: int | None = None,
    payout_id: int | None = None,
    first: int = 20,
    after: str | None = None,
) -> EventPage:
    """The providers' events as received, newest first: of a provider, and those naming a
        payment or a payout (by our id in their metadata or the provider's ids for it: events
        are kept as the provider sent them, so they are found by what they carry). An event
        with no ``processed_at`` was of a type Roost does not act on; its ``outcome`` says what came
    of it (none for events recorded before outcomes were kept)."""
    if not is_admin(admin):
        raise Forbidden("Only admins read the providers' events.")
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions: list[ColumnElement[bool]] = []
    if provider is not None:
        conditions.append(ProviderEvent.provider == provider)
    text = cast(ProviderEvent.payload, Text)
    for names in (
        await _names_of_payment(session, payment_id) if payment_id is not None else None,
        await _names_of_payout(session, payout_id) if payout_id is not None else None,
    ):
        if names is not None:
            conditions.append(or_(*(text.contains(name, autoescape=True) for name in names)))
    query = select(*(getattr(ProviderEvent, name) for name in ProviderEventRow._fields))
    query = query.where(*conditions)
    if after:
        (before,) = cursors.unpack(after, size=1, problem="is not a cursor of this list")
        if not isinstance(before, int) or isinstance(before, bool):
            raise InvalidInput.field("after", "is not a cursor of this list")
        query = query.where(ProviderEvent.id < before)
    rows = (await session.execute(query.order_by(ProviderEvent.id.desc()).limit(first + 1))).all()
    page = [ProviderEventRow._make(row) for row in rows[:first]]
    total = select(func.count()).select_from(ProviderEvent).where(*conditions)
    return EventPage(page, [cursors.pack(row.id) for row in page], len(rows) > first, total)
