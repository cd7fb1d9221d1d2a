"""The platform's figures, for admins only."""

from datetime import date
from typing import Annotated

import strawberry

from resolvers.permissions import IsAdmin
from schema.context import Info
from schema.platform_metrics import PlatformMetrics
from services import platform_metrics as platform_metrics_service

From = Annotated[date, strawberry.argument(name="from", description="The first UTC day counted.")]
To = Annotated[
    date,
    strawberry.argument(description="The last UTC day counted; at most 366 days after from."),
]


async def platform_metrics(info: Info, from_: From, to: To) -> PlatformMetrics:
    async with info.context.database.read_session() as session:
        figures = await platform_metrics_service.platform_figures(session, first=from_, last=to)
    return PlatformMetrics.of(figures, from_=from_, to=to)


@strawberry.type
class PlatformMetricsQueries:
    platform_metrics: PlatformMetrics = strawberry.field(
        resolver=platform_metrics,
        permission_classes=[IsAdmin],
        description="Admins: bookings, gross booking value and new users per UTC day, listings "
        "on show, and the payment failure and refund rates, over a range of at most 366 days "
        "(BAD_USER_INPUT otherwise, or when it ends before it starts).",
    )
