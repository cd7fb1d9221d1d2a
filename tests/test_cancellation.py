"""Refunds on cancellation, by policy: pure unit tests of ``refund_on_cancel`` and ``percent_of``.

Amounts are integer minor units. Limits are inclusive: cancelling exactly at a limit is still
"until" it, one second later is after it. ``now`` is passed in UTC, the nights in the listing's
zone, as the booking service does.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.cancellation import refund_on_cancel
from services.pricing import percent_of

POLICIES = ["FLEXIBLE", "MODERATE", "FIRM", "STRICT"]
SECOND = timedelta(seconds=1)


def night_starts(
    check_in: date, nights: int, at: time = time(15), zone: str = "Europe/Paris"
) -> list[datetime]:
    """When each night begins: the check-in time on its date, where the listing is."""
    return [
        datetime.combine(check_in + timedelta(days=offset), at, ZoneInfo(zone))
        for offset in range(nights)
    ]


# A three-night stay in Paris from 10 July, 15:00 local; nights priced apart so it shows which
# ones are refunded, plus fees (cleaning and service) that only a full refund returns.
PRICES = [10_000, 12_000, 14_000]
STARTS = night_starts(date(2025, 7, 10), 3)
CHECK_IN = STARTS[0].astimezone(UTC)
PAID = sum(PRICES) + 5_000 + 5_740
BOOKED_AT = datetime(2025, 5, 1, 9, tzinfo=UTC)


def before(delta: timedelta) -> datetime:
    """The instant ``delta`` before check-in."""
    return CHECK_IN - delta


def refund(
    policy: str,
    now: datetime,
    *,
    paid: int = PAID,
    prices: list[int] = PRICES,
    starts: list[datetime] = STARTS,
    booked_at: datetime = BOOKED_AT,
    by_host: bool = False,
) -> int:
    result = refund_on_cancel(
        policy,
        paid=paid,
        night_prices=prices,
        night_starts=starts,
        booked_at=booked_at,
        now=now,
        by_host=by_host,
    )
    assert type(result) is int
    return result


# Any policy.


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(
    "now", [before(timedelta(days=60)), STARTS[2] + timedelta(hours=1)], ids=["early", "mid-stay"]
)
def test_host_cancellation_refunds_everything_paid_under_any_policy_at_any_time(policy, now):
    assert refund(policy, now, by_host=True) == PAID
    assert refund(policy, now, by_host=True, paid=7_001) == 7_001


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("by_host", [False, True])
def test_nothing_paid_refunds_nothing(policy, by_host):
    assert refund(policy, before(timedelta(days=60)), paid=0, by_host=by_host) == 0


@pytest.mark.parametrize("policy", POLICIES)
def test_full_refund_is_what_is_still_paid_after_a_partial_refund(policy):
    now = before(timedelta(days=60))  # booked just now, so STRICT refunds in full too
    assert refund(policy, now, paid=20_000, booked_at=now) == 20_000


def test_partial_refund_never_exceeds_what_is_still_paid():
    now = before(timedelta(days=4))  # MODERATE: 50% of the nights, 18_000
    assert refund("MODERATE", now, paid=20_000) == 18_000
    assert refund("MODERATE", now, paid=15_000) == 15_000


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="unknown cancellation policy 'LENIENT'"):
        refund("LENIENT", before(timedelta(days=60)))


# FLEXIBLE.


def test_flexible_refunds_in_full_fees_included_until_exactly_24_hours_before():
    assert refund("FLEXIBLE", before(timedelta(days=60))) == PAID
    assert refund("FLEXIBLE", before(timedelta(hours=24))) == PAID


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (before(timedelta(hours=24)) + SECOND, 12_000 + 14_000),
        (CHECK_IN - SECOND, 12_000 + 14_000),
        (CHECK_IN, 14_000),  # the first night has started: the second is the one kept
        (STARTS[1] - SECOND, 14_000),
        (STARTS[1], 0),
        (STARTS[2] + timedelta(hours=1), 0),
    ],
    ids=[
        "one-second-after-limit",
        "one-second-before-check-in",
        "at-check-in",
        "mid-stay-before-second-night",
        "mid-stay-at-second-night",
        "last-night-started",
    ],
)
def test_flexible_after_24_hours_before_refunds_unstarted_nights_less_one_and_no_fees(
    now, expected
):
    assert refund("FLEXIBLE", now) == expected


# MODERATE.


def test_moderate_refunds_in_full_until_exactly_five_days_before():
    assert refund("MODERATE", before(timedelta(days=60))) == PAID
    assert refund("MODERATE", before(timedelta(days=5))) == PAID


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (before(timedelta(days=5)) + SECOND, 18_000),
        (CHECK_IN - SECOND, 18_000),
        (CHECK_IN, 13_000),  # the first night has started
        (STARTS[1] + timedelta(hours=1), 7_000),
        (STARTS[2], 0),
    ],
    ids=[
        "one-second-after-limit",
        "one-second-before-check-in",
        "at-check-in",
        "mid-stay-second-night-started",
        "last-night-started",
    ],
)
def test_moderate_after_five_days_before_refunds_half_the_unstarted_nights(now, expected):
    assert refund("MODERATE", now) == expected


# FIRM.


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (before(timedelta(days=30)), PAID),
        (before(timedelta(days=30)) + SECOND, 18_000),
        (before(timedelta(days=7)), 18_000),
        (before(timedelta(days=7)) + SECOND, 0),
        (CHECK_IN - SECOND, 0),
        (STARTS[1], 0),
    ],
    ids=[
        "exactly-30-days-before",
        "one-second-after-30-days",
        "exactly-7-days-before",
        "one-second-after-7-days",
        "one-second-before-check-in",
        "mid-stay",
    ],
)
def test_firm_refunds_in_full_until_30_days_then_half_the_nights_until_7_days_then_nothing(
    now, expected
):
    assert refund("FIRM", now) == expected


# STRICT.


def strict(booked_days_ahead: timedelta, cancelled_after: timedelta) -> int:
    booked_at = before(booked_days_ahead)
    return refund("STRICT", booked_at + cancelled_after, booked_at=booked_at)


def test_strict_refunds_in_full_until_exactly_48_hours_after_booking_14_days_or_more_ahead():
    assert strict(timedelta(days=20), timedelta(hours=1)) == PAID
    assert strict(timedelta(days=20), timedelta(hours=48)) == PAID
    assert strict(timedelta(days=20), timedelta(hours=48) + SECOND) == 18_000


def test_strict_refunds_in_full_only_while_check_in_is_at_least_14_days_away():
    # Booked 15 days ahead: still within 48 hours of booking at both instants.
    assert strict(timedelta(days=15), timedelta(days=1)) == PAID  # exactly 14 days before
    assert strict(timedelta(days=15), timedelta(days=1) + SECOND) == 18_000


def test_strict_booked_20_days_ahead_and_cancelled_3_days_later_refunds_half():
    assert strict(timedelta(days=20), timedelta(days=3)) == 18_000


def test_strict_booked_10_days_ahead_and_cancelled_an_hour_later_refunds_half():
    assert strict(timedelta(days=10), timedelta(hours=1)) == 18_000


def test_strict_refunds_half_the_nights_until_exactly_7_days_before_then_nothing():
    assert refund("STRICT", before(timedelta(days=7))) == 18_000
    assert refund("STRICT", before(timedelta(days=7)) + SECOND) == 0
    assert refund("STRICT", STARTS[1]) == 0


# Rounding: half up, to the minor unit, integers only.


@pytest.mark.parametrize(
    ("minor", "percent", "expected"),
    [
        (10_001, 50, 5_001),
        (10_000, 50, 5_000),
        (1, 50, 1),
        (3, 50, 2),
        (4, 10, 0),
        (5, 10, 1),
        (10_000, 14, 1_400),
        (0, 50, 0),
    ],
)
def test_percent_of_rounds_half_up_to_a_whole_minor_unit(minor, percent, expected):
    result = percent_of(minor, Decimal(percent))
    assert type(result) is int
    assert result == expected


def test_half_refund_of_an_odd_amount_rounds_half_up():
    now = before(timedelta(days=4))
    assert refund("MODERATE", now, paid=12_001, prices=[10_001], starts=STARTS[:1]) == 5_001


def test_half_refund_in_a_zero_decimal_currency_rounds_half_up_to_the_yen():
    # ¥12,345 a night for three nights in Tokyo: half of ¥37,035 is ¥18,517.5 → ¥18,518.
    starts = night_starts(date(2025, 7, 10), 3, zone="Asia/Tokyo")
    now = starts[0].astimezone(UTC) - timedelta(days=10)
    yen = {"prices": [12_345] * 3, "starts": starts, "paid": 45_000}
    assert refund("FIRM", now, **yen) == 18_518
    assert refund("STRICT", now, **yen) == 18_518
    # MODERATE mid-stay, two nights left: half of ¥24,690 is exactly ¥12,345.
    assert refund("MODERATE", starts[0] + timedelta(hours=1), **yen) == 12_345


# Time zones: nights start at the check-in time where the listing is.


def test_the_same_instant_is_past_the_24_hour_limit_in_tokyo_but_not_in_los_angeles():
    # Both check in on 10 July at 15:00 local: 06:00 UTC in Tokyo, 22:00 UTC in Los Angeles,
    # so their 24-hour limits are 06:00 and 22:00 UTC on 9 July.
    tokyo = night_starts(date(2025, 7, 10), 3, zone="Asia/Tokyo")
    los_angeles = night_starts(date(2025, 7, 10), 3, zone="America/Los_Angeles")
    assert tokyo[0] == datetime(2025, 7, 10, 6, tzinfo=UTC)
    assert los_angeles[0] == datetime(2025, 7, 10, 22, tzinfo=UTC)

    now = datetime(2025, 7, 9, 12, tzinfo=UTC)
    assert refund("FLEXIBLE", now, starts=tokyo) == 12_000 + 14_000
    assert refund("FLEXIBLE", now, starts=los_angeles) == PAID


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_the_24_hour_limit_is_inclusive_in_the_listing_time_zone(zone):
    starts = night_starts(date(2025, 7, 10), 3, zone=zone)
    limit = starts[0].astimezone(UTC) - timedelta(hours=24)
    assert refund("FLEXIBLE", limit, starts=starts) == PAID
    assert refund("FLEXIBLE", limit + SECOND, starts=starts) == 12_000 + 14_000


def test_mid_stay_nights_start_at_the_local_check_in_time():
    # Check-in at 16:00 in Tokyo (07:00 UTC): at 06:59:59 UTC on the second day the second
    # night has not started yet, at 07:00 it has.
    starts = night_starts(date(2025, 7, 10), 3, at=time(16), zone="Asia/Tokyo")
    second = datetime(2025, 7, 11, 7, tzinfo=UTC)
    assert refund("MODERATE", second - SECOND, starts=starts) == 13_000
    assert refund("MODERATE", second, starts=starts) == 7_000
    assert refund("FLEXIBLE", second - SECOND, starts=starts) == 14_000
    assert refund("FLEXIBLE", second, starts=starts) == 0


@pytest.mark.parametrize(
    ("check_in", "minutes_before", "expected"),
    [
        (date(2025, 11, 2), 24 * 60 + 30, PAID),  # clocks go back on 2 Nov in Los Angeles
        (date(2025, 3, 9), 23 * 60 + 30, 12_000 + 14_000),  # clocks go forward on 9 Mar
    ],
    ids=["fall-back", "spring-forward"],
)
def test_the_24_hour_limit_is_24_real_hours_across_a_dst_change(check_in, minutes_before, expected):
    starts = night_starts(check_in, 3, zone="America/Los_Angeles")
    now = starts[0].astimezone(UTC) - timedelta(minutes=minutes_before)
    assert refund("FLEXIBLE", now, starts=starts) == expected
