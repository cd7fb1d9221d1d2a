"""Providers' word on payments (webhook events, M-Pesa's callbacks), each applied once.

An event is recorded in the transaction that applies it; the unique (provider, event_id) lets
one delivery of it through, so a redelivery, or ten at once, change nothing more.
"""

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ProviderEvent


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
