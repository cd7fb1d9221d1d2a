"""Bookings, their prices and payments."""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Self

import strawberry
from strawberry import relay

from db import states
from db.rows import BookingRow
from resolvers import payments as payment_resolvers
from resolvers.permissions import can_see_booking
from schema.accounts import UserType
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from schema.listings import CancellationPolicy, ListingType, MoneyType
from schema.payments import PaymentProvider, PaymentType
from services.pricing import Price

# The states' own enums, registered with strawberry (see schema/listings.py).
BookingStatus = states.BookingStatus
strawberry.enum(BookingStatus, description="Where a booking is in its life.")
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
    def of(cls, price: Price, *, booking_id: int | None = None) -> Self:
        """``booking_id``: the booking this is the price of (None: a quote)."""

        def money(minor: int) -> MoneyType:
            return MoneyType.of(minor, price.currency, booking_id=booking_id)

        return cls(
            nights=price.nights,
            nightly_subtotal=money(price.nightly_subtotal),
            cleaning_fee=money(price.cleaning_fee),
            service_fee=money(price.service_fee),
            taxes=money(price.taxes),
            total=money(price.total),
        )


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
    _row: strawberry.Private[BookingRow]

    @strawberry.field(description="The price as it was when booked (or last changed).")
    def price(self) -> PriceQuote:
        row = self._row
        return PriceQuote.of(
            Price(
                currency=row.currency,
                night_prices=tuple(row.night_prices_minor),
                cleaning_fee=row.cleaning_fee_minor,
                service_fee=row.service_fee_minor,
                taxes=row.taxes_minor,
            ),
            booking_id=row.id,
        )

    @strawberry.field(description="What the cancellation refunded; null unless CANCELED.")
    def refund_amount(self) -> MoneyType | None:
        refund = self._row.refund_minor
        if refund is None:
            return None
        return MoneyType.of(refund, self._row.currency, booking_id=self._row.id)

    @strawberry.field
    async def listing(self, info: Info) -> ListingType:
        return ListingType.from_row(
            await info.context.loaders.listing_by_id.load_existing(self._row.listing_id)
        )

    @strawberry.field
    async def guest(self, info: Info) -> UserType:
        guest = await info.context.loaders.user_by_id.load_existing(self._row.guest_id)
        return UserType.from_row(guest)

    @strawberry.field(description="The payment in play, else the latest attempt; null before any.")
    async def payment(self, info: Info) -> PaymentType | None:
        row = await info.context.loaders.payment_by_booking.load(self.booking_id)
        return PaymentType.from_row(row) if row is not None else None

    @strawberry.field(
        description="The providers the guest can pay this booking with: those configured here "
        "that take its currency."
    )
    def payment_providers(self, info: Info) -> list[PaymentProvider]:
        return payment_resolvers.payment_providers(info, self._row)

    @strawberry.field(
        description="What cancelling now would refund, cancelled by the viewer; null when the "
        "booking cannot be cancelled."
    )
    async def refund_preview(self, info: Info) -> MoneyType | None:
        # A rule of money: decided in resolvers/payments.py (a field resolver there could not
        # be named here, as resolvers/bookings.py imports this module).
        return await payment_resolvers.refund_preview(info, self._row)

    @classmethod
    def from_row(cls, row: BookingRow) -> Self:
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
        return [
            cls.from_row(row) if row is not None and await can_see_booking(info, row) else None
            for row in rows
        ]


@strawberry.type(description="A booking in a list, with the cursor to continue after it.")
class BookingEdge(Edge[BookingType]):
    pass


@strawberry.type(description="A page of bookings.")
class BookingConnection(Connection[BookingEdge]):
    total_count: int = total_count("How many bookings match in all.")


@strawberry.input(description="A booking request.")
class CreateBookingInput:
    listing_id: strawberry.ID
    check_in: date
    check_out: date
    guests: int
    message: str | None = strawberry.field(
        default=None, description="To the host, at most 2,000 characters."
    )
