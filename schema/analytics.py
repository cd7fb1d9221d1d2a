"""Host analytics: how a host's places did over a period, and in each month of it."""

from datetime import date
from typing import Self

import strawberry

from schema.listings import MoneyType
from services.analytics import CurrencyFigures, HostAnalytics, PeriodFigures, Ratings


@strawberry.type(
    name="HostAnalyticsMoney",
    description="A period's money in one currency. Each stay's figures are split over its "
    "nights by their prices (the cleaning fee on the first night), so a stay crossing a month "
    "counts in each month for its nights there. A stay's figures are its payout's once written, "
    "until then what it would be paid now (an estimate at today's host fee).",
)
class HostAnalyticsMoneyType:
    currency: str = strawberry.field(description="ISO 4217 code.")
    nights_booked: int = strawberry.field(
        description="Nights of CONFIRMED and COMPLETED stays in this currency."
    )
    average_daily_rate: MoneyType | None = strawberry.field(
        description="Night prices of the booked nights over their number (cleaning fees left "
        "out), rounded half up; null with no night booked."
    )
    gross_revenue: MoneyType = strawberry.field(
        description="Night prices plus cleaning fees of the stays counted: booked stays, and "
        "canceled ones the guest kept paying a share of."
    )
    fees: MoneyType = strawberry.field(description="Roost's host fees on them.")
    refunds: MoneyType = strawberry.field(
        description="What went back to guests of them (of the whole price they paid)."
    )
    net_payouts: MoneyType = strawberry.field(
        description="What the host is (or will be) paid for them: gross less fees and refunds, "
        "never below zero for a stay."
    )

    @classmethod
    def of(cls, figures: CurrencyFigures) -> Self:
        currency = figures.currency
        rate = figures.average_daily_rate
        return cls(
            currency=currency,
            nights_booked=figures.nights_booked,
            average_daily_rate=None if rate is None else MoneyType.of(rate, currency),
            gross_revenue=MoneyType.of(figures.gross, currency),
            fees=MoneyType.of(figures.fees, currency),
            refunds=MoneyType.of(figures.refunds, currency),
            net_payouts=MoneyType.of(figures.net, currency),
        )


@strawberry.type(
    name="HostCancellations",
    description="Bookings canceled on a date of the period (at the listing), by who canceled.",
)
class HostCancellationsType:
    total: int = strawberry.field(description="All of them, declined requests included.")
    by_guest: int = strawberry.field(description="Canceled by the guest.")
    by_host: int = strawberry.field(description="Canceled or declined by the host.")
    by_others: int = strawberry.field(description="By an admin, or lapsed holds.")


@strawberry.type(
    name="HostAnalyticsPeriod",
    description="A host's figures from one date to another, both included.",
)
class HostAnalyticsPeriodType:
    from_: date = strawberry.field(name="from", description="The first night counted.")
    to: date = strawberry.field(description="The last night counted.")
    nights_available: int = strawberry.field(
        description="Listings counted x nights of the period, less the nights the host blocked."
    )
    nights_booked: int = strawberry.field(
        description="Nights of CONFIRMED and COMPLETED stays in the period; a night is counted "
        "on the date it starts, at the listing."
    )
    occupancy_rate: float | None = strawberry.field(
        description="nightsBooked / nightsAvailable, from 0 to 1; null with none available."
    )
    cancellations: HostCancellationsType = strawberry.field(
        description="Bookings canceled in the period."
    )
    by_currency: list[HostAnalyticsMoneyType] = strawberry.field(
        description="Money per listing currency, by code; currencies are never added together."
    )
    in_preferred_currency: HostAnalyticsMoneyType | None = strawberry.field(
        description="The same money in the host's preferred currency, each currency's sums "
        "converted at today's exchange rate, for display; null when a rate is missing."
    )

    @classmethod
    def of(cls, period: PeriodFigures) -> Self:
        preferred = period.in_preferred_currency
        canceled = period.cancellations
        return cls(
            from_=period.start,
            to=period.end,
            nights_available=period.nights_available,
            nights_booked=period.nights_booked,
            occupancy_rate=period.occupancy_rate,
            cancellations=HostCancellationsType(
                total=canceled.total,
                by_guest=canceled.by_guest,
                by_host=canceled.by_host,
                by_others=canceled.by_others,
            ),
            by_currency=[HostAnalyticsMoneyType.of(each) for each in period.by_currency],
            in_preferred_currency=None
            if preferred is None
            else HostAnalyticsMoneyType.of(preferred),
        )


@strawberry.type(
    name="HostRatings",
    description="Mean ratings of the published, visible guest reviews of the listings counted, "
    "published on a date of the period (at the listing); null where none rated a category.",
)
class HostRatingsType:
    reviews: int = strawberry.field(description="How many reviews.")
    overall: float | None = strawberry.field(description="The overall rating, 1 to 5.")
    cleanliness: float | None = strawberry.field(description="1 to 5.")
    accuracy: float | None = strawberry.field(description="1 to 5.")
    communication: float | None = strawberry.field(description="1 to 5.")
    location: float | None = strawberry.field(description="1 to 5.")
    check_in: float | None = strawberry.field(description="1 to 5.")
    value: float | None = strawberry.field(description="1 to 5.")

    @classmethod
    def of(cls, ratings: Ratings) -> Self:
        means = ratings.means
        return cls(
            reviews=ratings.reviews,
            overall=means["rating"],
            cleanliness=means["cleanliness"],
            accuracy=means["accuracy"],
            communication=means["communication"],
            location=means["location"],
            check_in=means["check_in"],
            value=means["value"],
        )


@strawberry.type(
    name="HostAnalytics",
    description="How a host's places did over a period: the listings counted are the host's "
    "(or the one asked for) that are not drafts and were not deleted before the period.",
)
class HostAnalyticsType:
    from_: date = strawberry.field(name="from", description="The first night counted.")
    to: date = strawberry.field(description="The last night counted.")
    listings: int = strawberry.field(description="How many listings are counted.")
    totals: HostAnalyticsPeriodType = strawberry.field(
        description="The whole period: the sums of its months."
    )
    months: list[HostAnalyticsPeriodType] = strawberry.field(
        description="Each calendar month the period touches, oldest first, cut to the period."
    )
    ratings: HostRatingsType = strawberry.field(description="Ratings of the period.")

    @classmethod
    def of(cls, analytics: HostAnalytics) -> Self:
        return cls(
            from_=analytics.start,
            to=analytics.end,
            listings=analytics.listings,
            totals=HostAnalyticsPeriodType.of(analytics.totals),
            months=[HostAnalyticsPeriodType.of(month) for month in analytics.months],
            ratings=HostRatingsType.of(analytics.ratings),
        )
