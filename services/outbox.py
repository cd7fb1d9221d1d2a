"""The transactional outbox: events written in the transaction of the change they report."""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OutboxEvent


def emit(session: AsyncSession, kind: str, *, now: datetime, **payload: Any) -> None:
    """Records ``kind`` (BookingConfirmed, PaymentRefunded, ...) to be handled once committed."""
    session.add(OutboxEvent(kind=kind, payload=payload, available_at=now))
