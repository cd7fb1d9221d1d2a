"""Calendar sync: other sites' calendars a listing imports, and what came of each fetch."""

from datetime import date, datetime, timedelta
from typing import Self

import strawberry
from strawberry import relay

from db.models import CalendarImport


@strawberry.type(description="Nights [from, to): from the first night to the day after the last.")
class NightRange:
    from_: date = strawberry.field(name="from", description="The first night.")
    to: date = strawberry.field(description="The day after the last night.")


def night_ranges(nights: list[date]) -> list[NightRange]:
    ranges: list[NightRange] = []
    for night in sorted(set(nights)):
        if ranges and ranges[-1].to == night:
            ranges[-1].to = night + timedelta(days=1)
        else:
            ranges.append(NightRange(from_=night, to=night + timedelta(days=1)))
    return ranges


@strawberry.type(
    name="CalendarImport",
    description="Another site's iCalendar feed a listing imports: the nights it shows are "
    "closed here, fetched again every 30 minutes or so.",
)
class CalendarImportType:
    id: strawberry.ID
    name: str = strawberry.field(description="The host's name for it, e.g. the other site's.")
    url: str = strawberry.field(description="The feed's address.")
    nights: int = strawberry.field(
        description="How many nights from today the feed showed taken at its last fetch, "
        "conflicts left out: they are closed here."
    )
    conflicts: list[NightRange] = strawberry.field(
        description="Nights the feed shows taken that are booked on Roost: they stay booked "
        "here, and the host is told (a CALENDAR_CONFLICT notification)."
    )
    last_fetched_at: datetime | None = strawberry.field(description="When it was last fetched.")
    last_success_at: datetime | None = strawberry.field(
        description="When a fetch last read it and applied it; null until one has."
    )
    last_error: str | None = strawberry.field(
        description="Why the last fetch could not be applied (its nights left as they were); "
        "null when it was."
    )
    created_at: datetime

    @classmethod
    def from_model(cls, row: CalendarImport) -> Self:
        return cls(
            id=strawberry.ID(relay.to_base64("CalendarImport", row.id)),
            name=row.name,
            url=row.url,
            nights=len(set(row.wanted) - set(row.conflicts)),
            conflicts=night_ranges(list(row.conflicts)),
            last_fetched_at=row.last_fetched_at,
            last_success_at=row.last_success_at,
            last_error=row.last_error,
            created_at=row.created_at,
        )
