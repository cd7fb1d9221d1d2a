"""Payments: what a guest pays for a booking, and a payment to complete with its provider."""

from collections.abc import Iterable
from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from auth import rules
from db import states
from db.rows import PaymentRow
from resolvers import receipts as receipt_resolvers
from resolvers.permissions import can_see_booking, current_user
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from schema.listings import MoneyType
from schema.receipts import ReceiptType
from services.provider_events import ProviderEventRow

# The states' own enums, registered with strawberry (see schema/listings.py).
PaymentStatus = states.PaymentStatus
strawberry.enum(
    PaymentStatus, description="Where a payment is. CANCELED: let go before any money was taken."
)
PaymentProvider = states.PaymentProvider
strawberry.enum(
    PaymentProvider, description="Who takes the payment. TEST: development and tests only."
)


@strawberry.type(name="Payment", description="What the guest pays for a booking.")
class PaymentType(relay.Node):
    payment_id: relay.NodeID[int]
    provider: PaymentProvider
    amount: MoneyType = strawberry.field(description="Charged in all, changes included.")
    status: PaymentStatus
    refunded_amount: MoneyType
    created_at: datetime
    _row: strawberry.Private[PaymentRow]

    @strawberry.field(
        description="The itemized receipt (and the link to its PDF); null for a viewer who "
        "may not see the booking."
    )
    async def receipt(self, info: Info) -> ReceiptType | None:
        found = await receipt_resolvers.receipt(info, self._row)
        return ReceiptType.of(found, self._row) if found is not None else None

    @strawberry.field(
        description="Why the provider refused the payment, in its words (a declined card); "
        "null unless FAILED, and for anyone but the payer and admins. The guest may start "
        "another payment while the booking holds."
    )
    async def failure_reason(self, info: Info) -> str | None:
        reason = self._row.failure_reason
        if reason is None:
            return None
        booking = await info.context.loaders.booking_by_id.load_existing(self._row.booking_id)
        # A card's troubles are the payer's own business, not the host's.
        viewer = await current_user(info)
        return reason if rules.can_see_user_private_fields(viewer, booking.guest_id) else None

    @classmethod
    def from_row(cls, row: PaymentRow) -> Self:
        return cls(
            payment_id=row.id,
            provider=PaymentProvider(row.provider),
            amount=MoneyType.of(row.amount_minor, row.currency, booking_id=row.booking_id),
            status=PaymentStatus(row.status),
            refunded_amount=MoneyType.of(
                row.refunded_minor, row.currency, booking_id=row.booking_id
            ),
            created_at=row.created_at,
            _row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # a hidden node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        loaders = info.context.loaders
        rows = await loaders.payment_by_id.load_many([int(i) for i in node_ids])
        found = [row for row in rows if row is not None]
        bookings = await loaders.booking_by_id.load_many([row.booking_id for row in found])
        visible = {
            row.id for row, booking in zip(found, bookings, strict=True)
            if await can_see_booking(info, booking)
        }  # fmt: skip
        return [
            cls.from_row(row) if row is not None and row.id in visible else None for row in rows
        ]


@strawberry.type(description="A payment in a list, with the cursor to continue after it.")
class PaymentEdge(Edge[PaymentType]):
    pass


@strawberry.type(description="A page of payments.")
class PaymentConnection(Connection[PaymentEdge]):
    total_count: int = total_count("How many payments match in all.")


@strawberry.type(description="A payment to complete with its provider.")
class PaymentSession:
    payment: PaymentType
    client_secret: str | None = strawberry.field(
        description="For the provider's client library (Stripe.js, say)."
    )
    redirect_url: str | None = strawberry.field(description="Where to send the guest to pay.")


@strawberry.type(
    name="ProviderEvent",
    description="A webhook event (or M-Pesa callback) a payment provider sent, as admins see "
    "it in the providers' event log: what, when, and whether Roost acted on it. Its payload "
    "is not shown.",
)
class ProviderEventType:
    id: strawberry.ID = strawberry.field(description="Roost's number for the event.")
    provider: PaymentProvider
    event_id: str = strawberry.field(description="The provider's id for the event.")
    type: str = strawberry.field(description='The provider\'s name for it: "charge.refunded".')
    received_at: datetime
    processed_at: datetime | None = strawberry.field(
        description="When Roost applied it; null for a type Roost does not act on."
    )
    outcome: str | None = strawberry.field(
        description="What came of it: APPLIED; UNKNOWN_PAYMENT (about no payment or payout of "
        "Roost's); IGNORED (a type Roost does not act on). Null for events kept before "
        "outcomes were."
    )

    @classmethod
    def from_row(cls, row: ProviderEventRow) -> Self:
        return cls(
            id=strawberry.ID(str(row.id)),
            provider=PaymentProvider(row.provider),
            event_id=row.event_id,
            type=row.type,
            received_at=row.received_at,
            processed_at=row.processed_at,
            outcome=row.outcome,
        )


@strawberry.type(description="A provider event in a list, with the cursor to continue after it.")
class ProviderEventEdge(Edge[ProviderEventType]):
    pass


@strawberry.type(description="A page of provider events.")
class ProviderEventConnection(Connection[ProviderEventEdge]):
    total_count: int = total_count("How many events match in all.")
