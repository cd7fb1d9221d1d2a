"""Host payouts: the account a host is paid into, each payout, and earnings over a period."""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Self

import strawberry
from strawberry import relay

from auth import rules
from db import states
from db.rows import PayoutAccountRow, PayoutRow
from resolvers.permissions import current_user
from schema.bookings import BookingType
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from schema.listings import MoneyType
from services import payouts as payouts_service
from services.payouts import CurrencyEarnings

# The states' own enums, registered with strawberry (see schema/listings.py).
PayoutStatus = states.PayoutStatus
strawberry.enum(
    PayoutStatus,
    description="Where a payout is. PENDING: waiting for its time, the host's payout account "
    "or a retry; SENDING: being transferred; FAILED: refused by the provider, tried again "
    "later; REVERSED: taken back at the provider after it was paid.",
)
PayoutAccountStatus = states.PayoutAccountStatus
strawberry.enum(
    PayoutAccountStatus,
    description="ONBOARDING: the host has not finished the provider's forms; READY: payouts "
    "are sent to it; RESTRICTED: the provider has stopped payouts until the host acts.",
)


@strawberry.type(name="PayoutAccount", description="Where a host is paid: a Stripe account.")
class PayoutAccountType:
    status: PayoutAccountStatus
    ready: bool = strawberry.field(description="Whether payouts are sent to it now.")
    ready_at: datetime | None = strawberry.field(description="When it first became READY.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: PayoutAccountRow) -> Self:
        return cls(
            status=PayoutAccountStatus(row.status),
            ready=row.status == states.PayoutAccountStatus.READY,
            ready_at=row.ready_at,
            created_at=row.created_at,
        )


@strawberry.type(description="Stripe's onboarding for a host's payout account.")
class PayoutOnboarding:
    url: str = strawberry.field(
        description="Send the host here at once: single-use, it expires within minutes (the "
        "refreshUrl is then visited, and should ask for a new one)."
    )
    expires_at: datetime
    account: PayoutAccountType


@strawberry.type(name="Payout", description="What a host is paid for a completed booking.")
class PayoutType(relay.Node):
    payout_id: relay.NodeID[int]
    status: PayoutStatus
    amount: MoneyType = strawberry.field(
        description="Sent to the host: nights plus cleaning, less the host fee and refunds."
    )
    host_fee: MoneyType = strawberry.field(description="Roost's fee on the host's side.")
    refunds: MoneyType = strawberry.field(description="Refunded to the guest, borne by the host.")
    earned_on: date = strawberry.field(description="The stay's check-out day.")
    next_attempt_at: datetime | None = strawberry.field(
        description="While not yet paid: when it is next tried (once the account is READY)."
    )
    failure_reason: str | None = strawberry.field(
        description="Why the provider refused it (FAILED) or took it back (REVERSED)."
    )
    paid_at: datetime | None
    created_at: datetime
    _row: strawberry.Private[PayoutRow]

    @strawberry.field
    async def booking(self, info: Info) -> BookingType:
        row = await info.context.loaders.booking_by_id.load_existing(self._row.booking_id)
        return BookingType.from_row(row)

    @classmethod
    def from_row(cls, row: PayoutRow) -> Self:
        status = states.PayoutStatus(row.status)
        explained = status in (states.PayoutStatus.FAILED, states.PayoutStatus.REVERSED)
        return cls(
            payout_id=row.id,
            status=status,
            amount=MoneyType.of(row.amount_minor, row.currency),
            host_fee=MoneyType.of(row.host_fee_minor, row.currency),
            refunds=MoneyType.of(row.refunds_minor, row.currency),
            earned_on=row.earned_on,
            next_attempt_at=row.available_at if status in states.UNPAID_PAYOUT else None,
            failure_reason=row.last_error if explained else None,
            paid_at=row.paid_at,
            created_at=row.created_at,
            _row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # a hidden node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        ids = [int(i) for i in node_ids]
        async with info.context.database.read_session() as session:
            found = await payouts_service.payouts_by_id(session, ids)
        viewer = await current_user(info)
        return [
            cls.from_row(row)
            if (row := found.get(i)) and rules.can_see_payout(viewer, host_id=row.host_id)
            else None
            for i in ids
        ]


@strawberry.type(description="A payout in a list, with the cursor to continue after it.")
class PayoutEdge(Edge[PayoutType]):
    pass


@strawberry.type(description="A page of payouts.")
class PayoutConnection(Connection[PayoutEdge]):
    total_count: int = total_count("How many payouts match in all.")


@strawberry.type(name="CurrencyEarnings", description="A host's earnings in one currency.")
class CurrencyEarningsType:
    currency: str = strawberry.field(description="ISO 4217 code.")
    paid: MoneyType = strawberry.field(description="Sent to the host.")
    pending: MoneyType = strawberry.field(description="Owed and not yet sent.")
    host_fees: MoneyType = strawberry.field(description="Roost's host fees on these stays.")
    payouts: int = strawberry.field(description="How many payouts (reversed ones left out).")

    @classmethod
    def of(cls, earned: CurrencyEarnings) -> Self:
        currency = earned.currency
        return cls(
            currency=currency,
            paid=MoneyType.of(earned.paid, currency),
            pending=MoneyType.of(earned.pending, currency),
            host_fees=MoneyType.of(earned.host_fees, currency),
            payouts=earned.payouts,
        )


@strawberry.type(description="A host's payouts for stays that ended in a period.")
class Earnings:
    from_: date = strawberry.field(name="from", description="The first check-out day counted.")
    to: date = strawberry.field(description="The last check-out day counted.")
    by_currency: list[CurrencyEarningsType] = strawberry.field(
        description="One entry per currency the host was paid in, by code; amounts in different "
        "currencies are never added together."
    )
