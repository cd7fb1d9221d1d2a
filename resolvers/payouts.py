"""Host payouts: connecting a payout account, and reading payouts and earnings. Hosts only."""

from datetime import date
from functools import partial
from typing import Annotated

import strawberry

from resolvers.node import node_id
from resolvers.permissions import IsAdmin, IsHost, require_user
from schema.context import Info
from schema.payouts import (
    CurrencyEarningsType,
    Earnings,
    PayoutAccountType,
    PayoutConnection,
    PayoutEdge,
    PayoutOnboarding,
    PayoutStatus,
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
    return await _payouts_page(info, host_id=host.id, first=first, after=after)


async def admin_payouts(
    info: Info,
    status: PayoutStatus | None = None,
    host_id: strawberry.ID | None = None,
    from_: Annotated[
        date | None,
        strawberry.argument(name="from", description="Earned on this day or later."),
    ] = None,
    to: Annotated[
        date | None, strawberry.argument(description="Earned on this day or earlier.")
    ] = None,
    first: int | None = 20,
    after: str | None = None,
) -> PayoutConnection:
    return await _payouts_page(
        info,
        host_id=node_id(host_id, "User", "hostId") if host_id else None,
        where=payouts_service.PayoutFilter(
            status=status.value if status else None, start=from_, end=to
        ),
        first=first,
        after=after,
    )


async def _payouts_page(
    info: Info,
    *,
    host_id: int | None,
    first: int | None,
    after: str | None,
    where: payouts_service.PayoutFilter | None = None,
) -> PayoutConnection:
    database = info.context.database
    async with database.read_session() as session:
        page = await payouts_service.list_payouts(
            session,
            host_id=host_id,
            where=where or payouts_service.PayoutFilter(),
            first=20 if first is None else first,
            after=after,
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return PayoutConnection.of(
        [
            PayoutEdge(cursor_value=cursor, node=PayoutType.from_row(row))
            for row, cursor in zip(page.payouts, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def retry_payout(info: Info, id: strawberry.ID) -> PayoutType:
    admin = await require_user(info)
    payout_id = node_id(id, "Payout", "id")
    await info.context.database.transaction(
        partial(
            payouts_service.retry_payout,
            admin=admin,
            payout_id=payout_id,
            now=info.context.services.clock(),
        )
    )
    async with info.context.database.read_session() as session:
        found = await payouts_service.payouts_by_id(session, [payout_id])
    return PayoutType.from_row(found[payout_id])


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
    admin_payouts: PayoutConnection = strawberry.field(
        resolver=admin_payouts,
        permission_classes=[IsAdmin],
        description="Every host's payouts, newest first (admins only): of a status, a host, "
        "earned within [from, to]. first: 1 to 100.",
    )
    earnings: Earnings = strawberry.field(
        resolver=earnings,
        permission_classes=[IsHost],
        description="The signed-in host's payouts for stays that ended in a period, summed "
        "per currency.",
    )


@strawberry.type
class PayoutMutations:
    retry_payout: PayoutType = strawberry.mutation(
        resolver=retry_payout,
        permission_classes=[IsAdmin],
        description="Admins only (audited): a FAILED payout goes back to PENDING, due now, for "
        "the worker to send under its current transfer key; CONFLICT in any other state.",
    )
    connect_payout_account: PayoutOnboarding = strawberry.mutation(
        resolver=connect_payout_account,
        permission_classes=[IsHost],
        description="Opens the host's Stripe payout account (once; later calls reuse it) and "
        "answers a link to Stripe's onboarding, which the host must finish before payouts are "
        "sent. returnUrl: where Stripe sends the host back; refreshUrl: where it sends them "
        "when the link has expired. Both http(s), at most 2,000 characters.",
    )
