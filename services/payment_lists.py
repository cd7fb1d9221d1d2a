"""Payments a page at a time, newest first: a guest's history, and every payment for admins."""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Booking, Payment
from db.rows import PaymentRow
from services import cursors
from services.booking_lists import MAX_PAGE_SIZE
from services.errors import InvalidInput


@dataclass(frozen=True)
class PaymentPage:
    payments: list[PaymentRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


def _decode(cursor: str) -> int:
    problem = "is not a cursor of this list"
    (payment_id,) = cursors.unpack(cursor, size=1, problem=problem)
    if not isinstance(payment_id, int) or isinstance(payment_id, bool):
        raise InvalidInput.field("after", problem)
    return payment_id


async def list_payments(
    session: AsyncSession,
    *,
    guest_id: int | None,
    status: str | None = None,
    provider: str | None = None,
    booking_id: int | None = None,
    first: int = 20,
    after: str | None = None,
) -> PaymentPage:
    """Every payment (attempts that failed included) of the guest's bookings, or of anyone's
    (``guest_id`` None), by id: ids are given in the order payments are made, and never
    repeat."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions: list[ColumnElement[bool]] = []
    if guest_id is not None:
        conditions.append(
            Payment.booking_id.in_(select(Booking.id).where(Booking.guest_id == guest_id))
        )
    if status is not None:
        conditions.append(Payment.status == status)
    if provider is not None:
        conditions.append(Payment.provider == provider)
    if booking_id is not None:
        conditions.append(Payment.booking_id == booking_id)
    query = select(*(getattr(Payment, name) for name in PaymentRow._fields)).where(*conditions)
    if after:
        query = query.where(Payment.id < _decode(after))
    rows = (await session.execute(query.order_by(Payment.id.desc()).limit(first + 1))).all()
    page = [PaymentRow._make(row) for row in rows[:first]]
    total = select(func.count()).select_from(Payment).where(*conditions)
    return PaymentPage(page, [cursors.pack(p.id) for p in page], len(rows) > first, total)
