"""Bookings: quote, book, answer, modify, cancel, and the lists of trips and reservations.

Paying is in resolvers/payments.py; answering, modifying and cancelling move money, so they
run through ``move_money`` (services/checkout.py tells how)."""

from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from typing import Annotated, Any

import strawberry

from resolvers.node import node_id
from resolvers.payments import move_money
from resolvers.permissions import IsAdmin, IsAuthenticated, can_see_booking, require_user
from schema.bookings import (
    BookingConnection,
    BookingEdge,
    BookingStatus,
    BookingType,
    CreateBookingInput,
    PriceQuote,
)
from schema.context import Info
from schema.listings import MoneyInput
from services import booking_lists, checkout
from services import bookings as bookings_service
from services.booking_lists import BookingFilter
from services.bookings import Stay
from services.payments import ProviderCall


async def quote(
    info: Info, listing_id: strawberry.ID, check_in: date, check_out: date, guests: int
) -> PriceQuote:
    services = info.context.services
    async with info.context.database.read_session() as session:
        price = await bookings_service.quote(
            session,
            listing_id=node_id(listing_id, "Listing", "listingId"),
            stay=Stay(check_in, check_out, guests),
            rules=await services.current_booking_rules(),
            now=services.clock(),
        )
    return PriceQuote.of(price)


async def booking(info: Info, id: strawberry.ID) -> BookingType | None:
    row = await info.context.loaders.booking_by_id.load(node_id(id, "Booking", "id"))
    return (
        BookingType.from_row(row) if row is not None and await can_see_booking(info, row) else None
    )


async def _reloaded(info: Info, booking_id: int) -> BookingType:
    loaders = info.context.loaders
    loaders.booking_by_id.clear(booking_id)
    loaders.payment_by_booking.clear(booking_id)
    return BookingType.from_row(await loaders.booking_by_id.load_existing(booking_id))


async def create_booking(info: Info, input: CreateBookingInput) -> BookingType:
    guest = await require_user(info)
    services = info.context.services

    created = await info.context.database.transaction(
        partial(
            bookings_service.create_booking,
            guest=guest,
            listing_id=node_id(input.listing_id, "Listing", "listingId"),
            stay=Stay(input.check_in, input.check_out, input.guests),
            message=input.message,
            rules=await services.current_booking_rules(),
            now=services.clock(),
        )
    )
    return await _reloaded(info, created.id)


async def _change_booking(
    info: Info,
    id: strawberry.ID,
    change: Callable[..., Awaitable[ProviderCall | None]],
    **values: Any,
) -> BookingType:
    """A change of a booking that may move money, then the booking as it now is."""
    booking_id = node_id(id, "Booking", "id")
    actor = await require_user(info)
    now = info.context.services.clock()
    await move_money(info, partial(change, actor=actor, booking_id=booking_id, now=now, **values))
    return await _reloaded(info, booking_id)


async def accept_booking(info: Info, id: strawberry.ID) -> BookingType:
    return await _change_booking(info, id, checkout.answer_request, accept=True, reason=None)


async def decline_booking(
    info: Info,
    id: strawberry.ID,
    reason: str | None = None,
) -> BookingType:
    return await _change_booking(info, id, checkout.answer_request, accept=False, reason=reason)


async def cancel_booking(
    info: Info,
    id: strawberry.ID,
    reason: str | None = None,
) -> BookingType:
    gateways = info.context.services.payment_gateways
    return await _change_booking(
        info, id, checkout.cancel_booking, reason=reason, gateways=gateways
    )


async def admin_cancel_booking(
    info: Info, id: strawberry.ID, refund: MoneyInput, reason: str
) -> BookingType:
    booking_id = node_id(id, "Booking", "id")
    admin = await require_user(info)
    services = info.context.services
    await move_money(
        info,
        partial(
            checkout.admin_cancel_booking,
            admin=admin,
            booking_id=booking_id,
            refund=refund.amount,
            currency=refund.currency,
            reason=reason,
            gateways=services.payment_gateways,
            now=services.clock(),
        ),
    )
    return await _reloaded(info, booking_id)


async def modify_booking(
    info: Info,
    id: strawberry.ID,
    check_in: date,
    check_out: date,
    guests: int,
) -> BookingType:
    return await _change_booking(
        info,
        id,
        checkout.modify_booking,
        stay=Stay(check_in, check_out, guests),
        rules=await info.context.services.current_booking_rules(),
        gateways=info.context.services.payment_gateways,
    )


def _connection(info: Info, page: booking_lists.BookingPage) -> BookingConnection:
    database = info.context.database

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return BookingConnection.of(
        [
            BookingEdge(cursor_value=cursor, node=BookingType.from_row(row))
            for row, cursor in zip(page.bookings, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def my_trips(
    info: Info,
    status: BookingStatus | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> BookingConnection:
    guest = await require_user(info)
    async with info.context.database.read_session() as session:
        page = await booking_lists.list_bookings(
            session,
            guest_id=guest.id,
            where=BookingFilter(status=status.value if status else None),
            first=20 if first is None else first,
            after=after,
            newest_first=True,
        )
    return _connection(info, page)


From = Annotated[
    date | None,
    strawberry.argument(name="from", description="Stays with a night on or after this date."),
]
To = Annotated[date | None, strawberry.argument(description="Stays with a night before this date.")]


def _filter(
    status: BookingStatus | None,
    listing_id: strawberry.ID | None,
    start: date | None,
    end: date | None,
) -> BookingFilter:
    return BookingFilter(
        status=status.value if status else None,
        listing_id=node_id(listing_id, "Listing", "listingId") if listing_id else None,
        start=start,
        end=end,
    )


async def host_reservations(
    info: Info,
    status: BookingStatus | None = None,
    listing_id: strawberry.ID | None = None,
    from_: From = None,
    to: To = None,
    first: int | None = 20,
    after: str | None = None,
) -> BookingConnection:
    host = await require_user(info)
    async with info.context.database.read_session() as session:
        page = await booking_lists.list_bookings(
            session,
            host_id=host.id,
            where=_filter(status, listing_id, from_, to),
            first=20 if first is None else first,
            after=after,
            newest_first=False,
        )
    return _connection(info, page)


async def bookings(
    info: Info,
    status: BookingStatus | None = None,
    guest_id: strawberry.ID | None = None,
    host_id: strawberry.ID | None = None,
    listing_id: strawberry.ID | None = None,
    from_: From = None,
    to: To = None,
    first: int | None = 20,
    after: str | None = None,
) -> BookingConnection:
    async with info.context.database.read_session() as session:
        page = await booking_lists.list_bookings(
            session,
            guest_id=node_id(guest_id, "User", "guestId") if guest_id else None,
            host_id=node_id(host_id, "User", "hostId") if host_id else None,
            where=_filter(status, listing_id, from_, to),
            first=20 if first is None else first,
            after=after,
            newest_first=True,
        )
    return _connection(info, page)


@strawberry.type
class BookingQueries:
    quote: PriceQuote = strawberry.field(
        resolver=quote,
        description="What a stay would cost; CONFLICT when a night is taken.",
    )
    booking: BookingType | None = strawberry.field(
        resolver=booking,
        description="A booking; null unless the viewer is its guest, its host or an admin.",
    )
    my_trips: BookingConnection = strawberry.field(
        resolver=my_trips,
        permission_classes=[IsAuthenticated],
        description="The signed-in user's bookings as a guest, latest check-in first.",
    )
    host_reservations: BookingConnection = strawberry.field(
        resolver=host_reservations,
        permission_classes=[IsAuthenticated],
        description="Bookings of the signed-in host's listings, earliest check-in first.",
    )
    bookings: BookingConnection = strawberry.field(
        resolver=bookings,
        permission_classes=[IsAdmin],
        description="Every booking, latest check-in first (admins only): of a status, a guest, "
        "a host, a listing, with a night within [from, to). first: 1 to 100.",
    )


@strawberry.type
class BookingMutations:
    create_booking: BookingType = strawberry.mutation(
        resolver=create_booking,
        permission_classes=[IsAuthenticated],
        description="A PENDING booking holding its nights until paid; CONFLICT when one is taken.",
    )
    accept_booking: BookingType = strawberry.mutation(
        resolver=accept_booking,
        permission_classes=[IsAuthenticated],
        description="The host takes a paid request: the payment is captured; CONFIRMED.",
    )
    decline_booking: BookingType = strawberry.mutation(
        resolver=decline_booking,
        permission_classes=[IsAuthenticated],
        description="The host turns a request down: the held payment is released.",
    )
    cancel_booking: BookingType = strawberry.mutation(
        resolver=cancel_booking,
        permission_classes=[IsAuthenticated],
        description="The guest (refund by policy) or the host (full refund) cancels.",
    )
    admin_cancel_booking: BookingType = strawberry.mutation(
        resolver=admin_cancel_booking,
        permission_classes=[IsAdmin],
        description="Admins only (audited): cancels anyone's booking with a reason, refunding "
        "`refund` (0 up to what was paid and not yet refunded, in the booking's currency) "
        "whatever its policy gives; its guest and host are told.",
    )
    modify_booking: BookingType = strawberry.mutation(
        resolver=modify_booking,
        permission_classes=[IsAuthenticated],
        description="The guest changes dates or guests; the difference is charged or refunded.",
    )
