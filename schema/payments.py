"""Payments: what a guest pays for a booking, and a payment to complete with its provider."""

from collections.abc import Iterable
from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from db import states
from db.rows import PaymentRow
from resolvers.permissions import can_see_booking
from schema.context import Info
from schema.listings import MoneyType

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


@strawberry.type(description="A payment to complete with its provider.")
class PaymentSession:
    payment: PaymentType
    client_secret: str | None = strawberry.field(
        description="For the provider's client library (Stripe.js, say)."
    )
    redirect_url: str | None = strawberry.field(description="Where to send the guest to pay.")
