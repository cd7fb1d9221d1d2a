"""The platform's figures for admins: a day-by-day series and the range's rates."""

from datetime import date
from typing import Self

import strawberry

from schema.listings import MoneyType
from services.platform_metrics import DayFigures, PlatformFigures


@strawberry.type(description="One UTC calendar day of the platform's activity.")
class PlatformDay:
    day: date = strawberry.field(description="The day, in UTC.")
    bookings: int = strawberry.field(
        description="Bookings created on the day, whatever became of them since (confirmed, "
        "canceled, lapsed unpaid or completed)."
    )
    gross_booking_value: list[MoneyType] = strawberry.field(
        description="The total price (nights, fees and taxes, as quoted) of the day's bookings, "
        "one entry per currency they were booked in, by code: amounts in different currencies "
        "are never added together nor converted. Empty on a day without bookings."
    )
    new_users: int = strawberry.field(description="Accounts created on the day.")

    @classmethod
    def of(cls, figures: DayFigures) -> Self:
        return cls(
            day=figures.day,
            bookings=figures.bookings,
            gross_booking_value=[
                MoneyType.of(amount.minor, amount.currency)
                for amount in figures.gross_booking_value
            ],
            new_users=figures.new_users,
        )


@strawberry.type(description="Admins: the platform's figures over a range of UTC days.")
class PlatformMetrics:
    from_: date = strawberry.field(name="from", description="The first day, included.")
    to: date = strawberry.field(description="The last day, included.")
    days: list[PlatformDay] = strawberry.field(
        description="Every day of the range in order, days without activity included."
    )
    active_listings: int = strawberry.field(
        description="Listings published and not deleted now, when asked (not over the range)."
    )
    payment_failure_rate: float | None = strawberry.field(
        description="Of the payments started in the range that have an outcome (every status "
        "but PENDING), the share that FAILED, from 0 to 1; null when there are none."
    )
    refund_rate: float | None = strawberry.field(
        description="Of the payments started in the range whose money was taken (SUCCEEDED, "
        "PARTIALLY_REFUNDED or REFUNDED), the share refunded in part or in full, from 0 to 1; "
        "null when there are none."
    )

    @classmethod
    def of(cls, figures: PlatformFigures, *, from_: date, to: date) -> Self:
        return cls(
            from_=from_,
            to=to,
            days=[PlatformDay.of(day) for day in figures.days],
            active_listings=figures.active_listings,
            payment_failure_rate=figures.payment_failures.value,
            refund_rate=figures.refunds.value,
        )
