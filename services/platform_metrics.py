"""The platform's figures for admins over a range of days: bookings and their gross value,
new users, listings on show, and how often payments fail and are refunded.

Days are UTC calendar days, both ends included. Amounts stay in the currency they were booked
in, summed per currency: a sum converted at today's rates would change with the rates, and
the rates of past days are not kept.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.states import CAPTURED_PAYMENT, ListingStatus, PaymentStatus
from services.errors import InvalidInput

MAX_DAYS = 366


@dataclass(frozen=True)
class CurrencyAmount:
    currency: str
    minor: int


@dataclass(frozen=True)
class DayFigures:
    day: date
    bookings: int
    gross_booking_value: list[CurrencyAmount]
    new_users: int


@dataclass(frozen=True)
class Rate:
    """``part`` of ``whole``; the rate is None when ``whole`` is 0."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class PlatformFigures:
    days: list[DayFigures]
    active_listings: int
    payment_failures: Rate
    refunds: Rate


_BOOKINGS_BY_DAY = text(
    """
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, currency,
           count(*) AS bookings, sum(total_minor) AS gross
    FROM booking
    WHERE created_at >= :start AND created_at < :end
    GROUP BY 1, 2
    """
)
_NEW_USERS_BY_DAY = text(
    """
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*)
    FROM user_account
    WHERE created_at >= :start AND created_at < :end
    GROUP BY 1
    """
)
_TOTALS = text(
    """
    SELECT
        (SELECT count(*) FROM listing
         WHERE status = :published AND deleted_at IS NULL AND moderation = 'APPROVED'),
        count(*) FILTER (WHERE status = :failed),
        count(*) FILTER (WHERE status <> :pending),
        count(*) FILTER (WHERE status IN :refunded),
        count(*) FILTER (WHERE status IN :captured)
    FROM payment
    WHERE created_at >= :start AND created_at < :end
    """
).bindparams(
    bindparam(
        "refunded",
        (PaymentStatus.REFUNDED.value, PaymentStatus.PARTIALLY_REFUNDED.value),
        expanding=True,
    ),
    bindparam("captured", tuple(status.value for status in CAPTURED_PAYMENT), expanding=True),
    published=ListingStatus.PUBLISHED.value,
    failed=PaymentStatus.FAILED.value,
    pending=PaymentStatus.PENDING.value,
)


async def platform_figures(session: AsyncSession, *, first: date, last: date) -> PlatformFigures:
    """Every day from ``first`` to ``last`` (UTC), each present even when nothing happened."""
    if last < first:
        raise InvalidInput("The range ends before it starts.", fields={"to": "before from"})
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(
            f"A range covers at most {MAX_DAYS} days.", fields={"to": f"over {MAX_DAYS} days"}
        )
    bounds = {
        "start": datetime.combine(first, time(), UTC),
        "end": datetime.combine(last + timedelta(days=1), time(), UTC),
    }
    bookings: dict[date, int] = {}
    gross: dict[date, list[CurrencyAmount]] = {}
    for day, currency, count, minor in await session.execute(_BOOKINGS_BY_DAY, bounds):
        bookings[day] = bookings.get(day, 0) + count
        gross.setdefault(day, []).append(CurrencyAmount(currency, int(minor)))
    new_users: dict[date, int] = {}
    for day, count in await session.execute(_NEW_USERS_BY_DAY, bounds):
        new_users[day] = count
    listed, failed, decided, refunded, captured = (await session.execute(_TOTALS, bounds)).one()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return PlatformFigures(
        days=[
            DayFigures(
                day=day,
                bookings=bookings.get(day, 0),
                gross_booking_value=sorted(gross.get(day, []), key=lambda a: a.currency),
                new_users=new_users.get(day, 0),
            )
            for day in days
        ],
        active_listings=listed,
        payment_failures=Rate(failed, decided),
        refunds=Rate(refunded, captured),
    )
