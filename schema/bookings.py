"""Bookings, their prices and payments."""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Self

import strawberry
from strawberry import relay

from auth.permissions import current_user
from db import states
from schema.context import Info
from schema.listings import CancellationPolicy, ListingType, MoneyType
from schema.users import UserType
from services import bookings as bookings_service
from services.bookings import can_see
from services.pricing import Price

# The states' own enums, registered with strawberry under these descriptions (registering
# returns the same class; names bound to a call's result would not read as types).
BookingStatus = states.BookingStatus
strawberry.enum(BookingStatus, description="Where a booking is in its life.")
PaymentStatus = states.PaymentStatus
strawberry.enum(
    PaymentStatus, description="Where a payment is. CANCELED: let go before any money was taken."
)
PaymentProvider = states.PaymentProvider
strawberry.enum(
    PaymentProvider, description="Who takes the payment. TEST: development and tests only."
)
CanceledBy = states.Party
strawberry.enum(
    CanceledBy,
    name="CanceledBy",
    description="Who cancelled a booking. SYSTEM: Roost, as the hold lapsed.",
)


@strawberry.type(description="What a stay costs; the parts add up to the total.")
class PriceQuote:
    nights: int
    nightly_subtotal: MoneyType = strawberry.field(description="Every night at its price.")
    cleaning_fee: MoneyType
    service_fee: MoneyType = strawberry.field(description="Roost's guest service fee.")
    taxes: MoneyType = strawberry.field(description="Occupancy taxes.")
    total: MoneyType

    @classmethod
    def of(cls, price: Price) -> Self:
        currency = price.currency
        return cls(
            nights=price.nights,
            nightly_subtotal=MoneyType.of(price.nightly_subtotal, currency),
            cleaning_fee=MoneyType.of(price.cleaning_fee, currency),
            service_fee=MoneyType.of(price.service_fee, currency),
            taxes=MoneyType.of(price.taxes, currency),
            total=MoneyType.of(price.total, currency),
        )


async def can_see_booking(info: Info, row: Any) -> bool:
    if row is None:
        return False
    listing = await info.context.loaders.listing_by_id.load(row.listing_id)
    return listing is not None and can_see(await current_user(info), row.guest_id, listing.host_id)


@strawberry.type(name="Payment", description="What the guest pays for a booking.")
class PaymentType(relay.Node):
    payment_id: relay.NodeID[int]
    provider: PaymentProvider
    amount: MoneyType = strawberry.field(description="Charged in all, changes included.")
    status: PaymentStatus
    refunded_amount: MoneyType
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls(
            payment_id=row.id,
            provider=PaymentProvider(row.provider),
            amount=MoneyType.of(row.amount_minor, row.currency),
            status=PaymentStatus(row.status),
            refunded_amount=MoneyType.of(row.refunded_minor, row.currency),
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


@strawberry.type(name="Booking", description="A stay: its guest, dates, price and payment.")
class BookingType(relay.Node):
    booking_id: relay.NodeID[int]
    check_in: date = strawberry.field(description="The first night, at the listing.")
    check_out: date = strawberry.field(description="The day the guest leaves; not a night.")
    nights: int
    guests: int
    status: BookingStatus
    message: str | None = strawberry.field(description="What the guest wrote to the host.")
    cancellation_policy: CancellationPolicy = strawberry.field(
        description="The listing's policy when the booking was made: the one that applies."
    )
    expires_at: datetime | None = strawberry.field(
        description="While PENDING: when the hold lapses unless paid (or answered by the host)."
    )
    canceled_at: datetime | None
    canceled_by: CanceledBy | None
    cancel_reason: str | None
    created_at: datetime
    _row: strawberry.Private[Any]

    @strawberry.field(description="The price as it was when booked (or last changed).")
    def price(self) -> PriceQuote:
        return PriceQuote.of(bookings_service.price_of(self._row))

    @strawberry.field(description="What the cancellation refunded; null unless CANCELED.")
    def refund_amount(self) -> MoneyType | None:
        refund = self._row.refund_minor
        return MoneyType.of(refund, self._row.currency) if refund is not None else None

    @strawberry.field
    async def listing(self, info: Info) -> ListingType:
        return ListingType.from_row(
            await info.context.loaders.listing_by_id.load(self._row.listing_id)
        )

    @strawberry.field
    async def guest(self, info: Info) -> UserType:
        return UserType.from_model(await info.context.loaders.user_by_id.load(self._row.guest_id))

    @strawberry.field(description="The payment in play, else the latest attempt; null before any.")
    async def payment(self, info: Info) -> PaymentType | None:
        row = await info.context.loaders.payment_by_booking.load(self.booking_id)
        return PaymentType.from_row(row) if row is not None else None

    @strawberry.field(
        description="What cancelling now would refund, cancelled by the viewer; null when the "
        "booking cannot be cancelled."
    )
    async def refund_preview(self, info: Info) -> MoneyType | None:
        row = self._row
        viewer = await current_user(info)
        if row.status not in bookings_service.ACTIVE or viewer is None:
            return None
        loaders = info.context.loaders
        listing = await loaders.listing_by_id.load(row.listing_id)
        if listing is None:  # a booking's listing is never deleted, only marked
            return None
        payment = await loaders.payment_by_booking.load(row.id)
        refund = bookings_service.refund_due(
            row,
            listing,
            payment,
            by=bookings_service.role_of(viewer, row, listing),
            now=info.context.services.clock(),
        )
        return MoneyType.of(refund, row.currency)

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls(
            booking_id=row.id,
            check_in=row.check_in,
            check_out=row.check_out,
            nights=(row.check_out - row.check_in).days,
            guests=row.guests,
            status=BookingStatus(row.status),
            message=row.message,
            cancellation_policy=CancellationPolicy(row.cancellation_policy),
            expires_at=row.expires_at if row.status == states.BookingStatus.PENDING else None,
            canceled_at=row.canceled_at,
            canceled_by=CanceledBy(row.canceled_by) if row.canceled_by else None,
            cancel_reason=row.cancel_reason,
            created_at=row.created_at,
            _row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # a hidden node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        rows = await info.context.loaders.booking_by_id.load_many([int(i) for i in node_ids])
        return [cls.from_row(row) if await can_see_booking(info, row) else None for row in rows]


@strawberry.type(description="A booking in a list, with the cursor to continue after it.")
class BookingEdge:
    cursor: str
    node: BookingType


@strawberry.type(description="A page of bookings.")
class BookingConnection:
    edges: list[BookingEdge]
    page_info: relay.PageInfo
    _count: strawberry.Private[Any]

    @strawberry.field(description="How many bookings match in all.")
    async def total_count(self) -> int:
        return await self._count()


@strawberry.input(description="A booking request.")
class CreateBookingInput:
    listing_id: strawberry.ID
    check_in: date
    check_out: date
    guests: int
    message: str | None = strawberry.field(
        default=None, description="To the host, at most 2,000 characters."
    )
