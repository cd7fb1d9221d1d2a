"""When a stay begins and ends, as instants: what the clock, refunds and reports go by."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo


def stay_bounds(
    check_in: date, check_out: date, *, time_zone: str, check_in_time: time, check_out_time: time
) -> tuple[datetime, datetime]:
    """The listing's check-in time on the first day and its check-out time on the last, where
    the listing is."""
    zone = ZoneInfo(time_zone)
    return (
        datetime.combine(check_in, check_in_time, zone),
        datetime.combine(check_out, check_out_time, zone),
    )
