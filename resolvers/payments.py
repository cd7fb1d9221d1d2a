"""Payments: starting one, the TEST checkout, and the money side of a booking's fields.

Every change that moves money runs as services/checkout.py describes: its first step in a
unit of work of its own, then ``checkout.settle`` asks the provider with no transaction open
and applies the answer in a second one.
"""

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.rows import BookingRow
from db.states import ACTIVE_BOOKING
from resolvers.node import node_id
from resolvers.permissions import IsAdmin, IsAuthenticated, current_user, require_user
from schema.accounts import phone_cipher_context
from schema.context import Info
from schema.listings import MoneyInput, MoneyType
from schema.payments import (
    PaymentConnection,
    PaymentEdge,
    PaymentProvider,
    PaymentSession,
    PaymentStatus,
    PaymentType,
    ProviderEventConnection,
    ProviderEventEdge,
    ProviderEventType,
)
from services import bookings as bookings_service
from services import checkout, payment_lists
from services import provider_events as provider_events_service
from services.payments import ProviderCall


async def move_money(
    info: Info, step: Callable[[AsyncSession], Awaitable[ProviderCall | None]]
) -> None:
    """(a) ``step`` in a unit of work; then (b) the provider is asked and (c) its answer
    applied in a second one. Raises what the client should hear, once all is recorded."""
    database = info.context.database
    services = info.context.services
    call = await database.transaction(step)
    await checkout.settle(
        database.transaction, services.payment_gateways, call, clock=services.clock
    )


async def start_payment(
    info: Info,
    booking_id: strawberry.ID,
    provider: PaymentProvider = PaymentProvider.STRIPE,
    phone_number: Annotated[
        str | None,
        strawberry.argument(
            description="MPESA only: the Kenyan mobile number to prompt (0712345678, "
            "+254712345678, ...); the guest's profile phone when left out."
        ),
    ] = None,
) -> PaymentSession:
    services = info.context.services
    database = info.context.database
    services.payment_gateways.get(provider.value)  # not offered here: refused before any lookup
    actor = await require_user(info)
    phone = None
    if provider == PaymentProvider.MPESA:
        phone = phone_number
        if phone is None and actor.phone_encrypted is not None:
            phone = services.cipher.decrypt(
                actor.phone_encrypted, context=phone_cipher_context(actor.id)
            )
    opening = await database.transaction(
        partial(
            checkout.start_payment,
            actor=actor,
            booking_id=node_id(booking_id, "Booking", "bookingId"),
            provider=provider.value,
            display_currency=actor.currency,
            gateways=services.payment_gateways,
            now=services.clock(),
            phone=phone,
        )
    )
    started = await checkout.create_with_provider(
        database.transaction, services.payment_gateways, opening
    )
    payment = await info.context.loaders.payment_by_id.load_existing(started.payment_id)
    return PaymentSession(
        payment=PaymentType.from_row(payment),
        client_secret=started.client_secret,
        redirect_url=started.redirect_url,
    )


async def confirm_test_payment(
    info: Info, payment_id: strawberry.ID, succeed: bool = True
) -> PaymentType:
    services = info.context.services
    services.payment_gateways.get("TEST")  # refused where TEST is not offered (production)
    payment_number = node_id(payment_id, "Payment", "paymentId")
    actor = await require_user(info)
    await move_money(
        info,
        partial(
            checkout.confirm_test_payment,
            actor=actor,
            payment_id=payment_number,
            succeed=succeed,
            now=services.clock(),
            rules=await services.current_booking_rules(),
        ),
    )
    return PaymentType.from_row(
        await info.context.loaders.payment_by_id.load_existing(payment_number)
    )


async def refund_payment(
    info: Info, id: strawberry.ID, amount: MoneyInput, reason: str
) -> PaymentType:
    payment_id = node_id(id, "Payment", "id")
    admin = await require_user(info)
    services = info.context.services
    await move_money(
        info,
        partial(
            checkout.refund_payment,
            admin=admin,
            payment_id=payment_id,
            amount=amount.amount,
            currency=amount.currency,
            reason=reason,
            gateways=services.payment_gateways,
            now=services.clock(),
        ),
    )
    loaders = info.context.loaders
    loaders.payment_by_id.clear(payment_id)
    return PaymentType.from_row(await loaders.payment_by_id.load_existing(payment_id))


async def refund_preview(info: Info, booking: BookingRow) -> MoneyType | None:
    """What cancelling ``booking`` (a loaded row) now would refund, cancelled by the viewer."""
    viewer = await current_user(info)
    if booking.status not in ACTIVE_BOOKING or viewer is None:
        return None
    loaders = info.context.loaders
    listing = await loaders.listing_by_id.load_existing(booking.listing_id)
    payment = await loaders.payment_by_booking.load(booking.id)
    services = info.context.services
    refund = checkout.refund_on_cancel(
        booking,
        listing,
        payment,
        by=bookings_service.role_of(viewer, booking, listing),
        now=services.clock(),
        gateways=services.payment_gateways,
    )
    return MoneyType.of(refund, booking.currency, booking_id=booking.id)


def payment_providers(info: Info, booking: BookingRow) -> list[PaymentProvider]:
    """The configured providers that take ``booking``'s currency (and can hold the money
    until the host answers, for a request to book)."""
    offered = info.context.services.payment_gateways.offered(
        booking.currency, capture="automatic" if booking.instant_book else "manual"
    )
    return [PaymentProvider(name) for name in offered]


async def my_payments(
    info: Info, first: int | None = 20, after: str | None = None
) -> PaymentConnection:
    guest = await require_user(info)
    return await _payments_page(info, guest_id=guest.id, first=first, after=after)


async def payments(
    info: Info,
    status: PaymentStatus | None = None,
    provider: PaymentProvider | None = None,
    booking_id: strawberry.ID | None = None,
    guest_id: strawberry.ID | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> PaymentConnection:
    return await _payments_page(
        info,
        guest_id=node_id(guest_id, "User", "guestId") if guest_id else None,
        status=status.value if status else None,
        provider=provider.value if provider else None,
        booking_id=node_id(booking_id, "Booking", "bookingId") if booking_id else None,
        first=first,
        after=after,
    )


async def _payments_page(
    info: Info,
    *,
    guest_id: int | None,
    first: int | None,
    after: str | None,
    status: str | None = None,
    provider: str | None = None,
    booking_id: int | None = None,
) -> PaymentConnection:
    database = info.context.database
    async with database.read_session() as session:
        page = await payment_lists.list_payments(
            session,
            guest_id=guest_id,
            status=status,
            provider=provider,
            booking_id=booking_id,
            first=20 if first is None else first,
            after=after,
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return PaymentConnection.of(
        [
            PaymentEdge(cursor_value=cursor, node=PaymentType.from_row(row))
            for row, cursor in zip(page.payments, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def provider_events(
    info: Info,
    provider: PaymentProvider | None = None,
    payment_id: strawberry.ID | None = None,
    payout_id: strawberry.ID | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> ProviderEventConnection:
    admin = await require_user(info)
    database = info.context.database
    async with database.read_session() as session:
        page = await provider_events_service.list_events(
            session,
            admin=admin,
            provider=provider.value if provider else None,
            payment_id=node_id(payment_id, "Payment", "paymentId") if payment_id else None,
            payout_id=node_id(payout_id, "Payout", "payoutId") if payout_id else None,
            first=20 if first is None else first,
            after=after,
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return ProviderEventConnection.of(
        [
            ProviderEventEdge(cursor_value=cursor, node=ProviderEventType.from_row(row))
            for row, cursor in zip(page.events, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


@strawberry.type
class PaymentQueries:
    my_payments: PaymentConnection = strawberry.field(
        resolver=my_payments,
        permission_classes=[IsAuthenticated],
        description="The signed-in user's payments as a guest (failed attempts too), newest "
        "first; at most 100 a page.",
    )
    payments: PaymentConnection = strawberry.field(
        resolver=payments,
        permission_classes=[IsAdmin],
        description="Every payment, newest first (admins only): of a status, a provider, a "
        "booking, a guest. first: 1 to 100.",
    )
    provider_events: ProviderEventConnection = strawberry.field(
        resolver=provider_events,
        permission_classes=[IsAdmin],
        description="The providers' webhook events as received, newest first (admins only): "
        "of a provider, or naming a payment or a payout. first: 1 to 100.",
    )


@strawberry.type
class PaymentMutations:
    start_payment: PaymentSession = strawberry.mutation(
        resolver=start_payment,
        permission_classes=[IsAuthenticated],
        description="The guest starts paying a PENDING booking with a provider.",
    )
    refund_payment: PaymentType = strawberry.mutation(
        resolver=refund_payment,
        permission_classes=[IsAdmin],
        description="Admins only (audited): refunds part or all of a captured payment, with a "
        "reason; more than 0, at most what was paid and not yet refunded. The booking stays "
        "as it is. CONFLICT while another movement of its money waits for an answer.",
    )
    confirm_test_payment: PaymentType = strawberry.mutation(
        resolver=confirm_test_payment,
        permission_classes=[IsAuthenticated],
        description="TEST provider only, never in production: the payment succeeds or fails.",
    )
