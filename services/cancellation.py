"""How much a cancelled booking refunds, by the policy it kept.

Times are instants; each night starts at the listing's check-in time on its date, where the
listing is, so "24 hours before check-in" means before the first night's start there. A limit
is inclusive: cancelling exactly 5 days before check-in is still "until 5 days before". Limits
are measured in real time (a day is 24 hours), whatever the clocks do at the listing.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.pricing import percent_of

HALF = Decimal(50)


def refund_on_cancel(
    policy: str,
    *,
    paid: int,
    night_prices: Sequence[int],
    night_starts: Sequence[datetime],
    booked_at: datetime,
    now: datetime,
    by_host: bool,
) -> int:
    """What goes back to the guest, in minor units: never more than ``paid``.

    A full refund is everything paid, fees included. Partial refunds cover nights only.
    """
    if paid <= 0:
        return 0
    if by_host:
        return paid
    # In UTC: subtracting from a local time would count wall-clock hours, 23 or 25 a day
    # when the clocks change there.
    check_in = night_starts[0].astimezone(UTC)
    unstayed = [
        price for price, start in zip(night_prices, night_starts, strict=True) if start > now
    ]

    def before(delta: timedelta) -> bool:
        return now <= check_in - delta

    if policy == "FLEXIBLE":
        refund = paid if before(timedelta(hours=24)) else sum(unstayed[1:])
    elif policy == "MODERATE":
        refund = paid if before(timedelta(days=5)) else percent_of(sum(unstayed), HALF)
    elif policy == "FIRM":
        if before(timedelta(days=30)):
            refund = paid
        else:
            refund = percent_of(sum(unstayed), HALF) if before(timedelta(days=7)) else 0
    elif policy == "STRICT":
        if now <= booked_at + timedelta(hours=48) and before(timedelta(days=14)):
            refund = paid
        else:
            refund = percent_of(sum(unstayed), HALF) if before(timedelta(days=7)) else 0
    else:
        raise ValueError(f"unknown cancellation policy {policy!r}")
    return min(refund, paid)
