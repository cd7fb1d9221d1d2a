"""Host analytics: the signed-in host's figures over a period. Hosts only."""

from datetime import date
from typing import Annotated

import strawberry

from resolvers.node import node_id
from resolvers.permissions import IsHost, require_user
from schema.analytics import HostAnalyticsType
from schema.context import Info
from services import analytics as analytics_service

From = Annotated[
    date, strawberry.argument(name="from", description="The first night counted (a date).")
]
To = Annotated[
    date,
    strawberry.argument(
        description="The last night counted, on or after from and less than 366 days after it."
    ),
]
ListingId = Annotated[
    strawberry.ID | None,
    strawberry.argument(
        name="listingId", description="One of the host's listings; all of them when left out."
    ),
]


async def host_analytics(
    info: Info, from_: From, to: To, listing_id: ListingId = None
) -> HostAnalyticsType:
    host = await require_user(info)
    listing = None if listing_id is None else node_id(listing_id, "Listing", "listingId")
    async with info.context.database.read_session() as session:
        analytics = await analytics_service.host_analytics(
            session,
            host_id=host.id,
            start=from_,
            end=to,
            listing_id=listing,
            host_fee_percent=(await info.context.services.current_payout_policy()).host_fee_percent,
            preferred_currency=host.currency,
        )
    return HostAnalyticsType.of(analytics)


@strawberry.type
class AnalyticsQueries:
    host_analytics: HostAnalyticsType = strawberry.field(
        resolver=host_analytics,
        permission_classes=[IsHost],
        description="How the signed-in host's places did from one date to another (both "
        "included): occupancy, average daily rate, revenue, fees, refunds and payouts per "
        "currency and in the host's preferred currency, cancellations, ratings, and the same "
        "per month. NOT_FOUND for a listingId that is not the host's.",
    )
