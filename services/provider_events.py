"""Providers' word on payments (webhook events, M-Pesa's callbacks), each applied once: a
provider's registry of one small handler per event type decides what an event means; this
records it and calls the handler.

An event is recorded in the transaction that applies it; the unique (provider, event_id) lets
one delivery of it through, so a redelivery, or ten at once, change nothing more. A handler
only touches the database: a provider call it asks for is left REQUESTED for a worker.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ProviderEvent
from services.bookings import BookingRules

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
        return Outcome.IGNORED
    known = await handler(session, resource, now, rules)
    await processed(session, recorded, now=now)
    if not known:
        log.warning("%s event %s (%s): no payment of ours", provider, event_id, event_type)
        return Outcome.UNKNOWN_PAYMENT
    return Outcome.APPLIED
