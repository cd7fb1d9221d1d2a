"""Host payouts: connecting a payout account, and reading payouts and earnings. Hosts only."""

from datetime import date
from typing import Annotated

import strawberry

from resolvers.permissions import IsHost, require_user
from schema.context import Info
from schema.payouts import (
    CurrencyEarningsType,
    Earnings,
    PayoutAccountType,
    PayoutConnection,
    PayoutEdge,
    PayoutOnboarding,
    PayoutType,
)
from services import payouts as payouts_service


async def connect_payout_account(info: Info, return_url: str, refresh_url: str) -> PayoutOnboarding:
    host = await require_user(info)
    services = info.context.services
    onboarding = await payouts_service.connect_account(
        info.context.database.transaction,
        payouts_service.payout_gateway(services.payment_gateways),
        host=host,
        return_url=return_url,
        refresh_url=refresh_url,
    )
    return PayoutOnboarding(
        url=onboarding.link.url,
        expires_at=onboarding.link.expires_at,
        account=PayoutAccountType.from_row(onboarding.account),
    )


async def payout_account(info: Info) -> PayoutAccountType | None:
    host = await require_user(info)
    async with info.context.database.read_session() as session:
        row = await payouts_service.account_of(session, host.id)
    return PayoutAccountType.from_row(row) if row is not None else None


async def payouts(info: Info, first: int | None = 20, after: str | None = None) -> PayoutConnection:
    host = await require_user(info)
    database = info.context.database
    async with database.read_session() as session:
        page = await payouts_service.list_payouts(
            session, host_id=host.id, first=20 if first is None else first, after=after
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await payouts_service.count_payouts(session, host_id=host.id)

    return PayoutConnection.of(
        [
            PayoutEdge(cursor=cursor, node=PayoutType.from_row(row))
            for row, cursor in zip(page.payouts, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


From = Annotated[
    date, strawberry.argument(name="from", description="The first check-out day counted.")
]
To = Annotated[
    date, strawberry.argument(description="The last check-out day counted; within 366 days.")
]


async def earnings(info: Info, from_: From, to: To) -> Earnings:
    host = await require_user(info)
    async with info.context.database.read_session() as session:
        sums = await payouts_service.earnings(session, host_id=host.id, start=from_, end=to)
    return Earnings(
        from_=from_, to=to, by_currency=[CurrencyEarningsType.of(earned) for earned in sums]
    )


@strawberry.type
class PayoutQueries:
    payout_account: PayoutAccountType | None = strawberry.field(
        resolver=payout_account,
        permission_classes=[IsHost],
        description="The signed-in host's payout account; null before connectPayoutAccount.",
    )
    payouts: PayoutConnection = strawberry.field(
        resolver=payouts,
        permission_classes=[IsHost],
        description="The signed-in host's payouts, newest first.",
    )
    earnings: Earnings = strawberry.field(
        resolver=earnings,
        permission_classes=[IsHost],
        description="The signed-in host's payouts for stays that ended in a period, summed "
        "per currency.",
    )


@strawberry.type
class PayoutMutations:
    connect_payout_account: PayoutOnboarding = strawberry.mutation(
        resolver=connect_payout_account,
        permission_classes=[IsHost],
        description="Opens the host's Stripe payout account (once; later calls reuse it) and "
        "answers a link to Stripe's onboarding, which the host must finish before payouts are "
        "sent. returnUrl: where Stripe sends the host back; refreshUrl: where it sends them "
        "when the link has expired. Both http(s), at most 2,000 characters.",
    )
