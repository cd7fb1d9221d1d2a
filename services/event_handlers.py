"""What happens after a booking or payment event: who hears about it.

Handlers run in the worker, in the transaction that marks their event processed, so what they
write to the database happens once. Mail carries a Message-ID made from the event, so a copy
sent again after a crash can be recognised as the same message.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import Booking, Listing, User
from gateways.email import Email, Mailer
from services.money import Money


@dataclass(frozen=True)
class HandlerContext:
    event_id: int
    mailer: Mailer
    frontend_url: str


Handler = Callable[[AsyncSession, Mapping[str, Any], HandlerContext], Awaitable[None]]


@dataclass(frozen=True)
class _Stay:
    booking: Booking
    listing: Listing
    guest: User
    host: User


async def _stay(session: AsyncSession, booking_id: int) -> _Stay:
    guest, host = aliased(User), aliased(User)
    row = (
        await session.execute(
            select(Booking, Listing, guest, host)
            .join(Listing, Listing.id == Booking.listing_id)
            .join(guest, guest.id == Booking.guest_id)
            .join(host, host.id == Listing.host_id)
            .where(Booking.id == booking_id)
        )
    ).one()
    return _Stay(*row)


def _dates(stay: _Stay) -> str:
    booking = stay.booking
    return f"{booking.check_in:%d %b %Y} to {booking.check_out:%d %b %Y}"


async def _tell(
    context: HandlerContext, user: User, subject: str, text: str, *, audience: str
) -> None:
    await context.mailer.send(
        Email(
            to=user.email,
            subject=subject,
            text=f"Hello {user.first_name},\n\n{text}\n\n{context.frontend_url}/trips\n",
            message_id=f"<event-{context.event_id}-{audience}@roost>",
        )
    )


async def booking_requested(
    session: AsyncSession, payload: Mapping[str, Any], context: HandlerContext
) -> None:
    stay = await _stay(session, payload["booking_id"])
    await _tell(
        context,
        stay.host,
        f"New booking request for {stay.listing.title}",
        f"{stay.guest.first_name} asks to stay {_dates(stay)}. Answer within 24 hours.",
        audience="host",
    )


async def booking_confirmed(
    session: AsyncSession, payload: Mapping[str, Any], context: HandlerContext
) -> None:
    stay = await _stay(session, payload["booking_id"])
    await _tell(
        context,
        stay.guest,
        f"Your stay at {stay.listing.title} is confirmed",
        f"You are booked {_dates(stay)}.",
        audience="guest",
    )
    await _tell(
        context,
        stay.host,
        f"New reservation at {stay.listing.title}",
        f"{stay.guest.first_name} stays {_dates(stay)}.",
        audience="host",
    )


async def booking_canceled(
    session: AsyncSession, payload: Mapping[str, Any], context: HandlerContext
) -> None:
    stay = await _stay(session, payload["booking_id"])
    refund = Money(payload.get("refund_minor") or 0, stay.booking.currency).formatted()
    reason = stay.booking.cancel_reason or "No reason was given."
    await _tell(
        context,
        stay.guest,
        f"Your booking at {stay.listing.title} is canceled",
        f"The stay {_dates(stay)} is canceled. {reason} Refund: {refund}.",
        audience="guest",
    )
    await _tell(
        context,
        stay.host,
        f"A booking at {stay.listing.title} is canceled",
        f"The stay {_dates(stay)} is canceled; those nights are free again.",
        audience="host",
    )


async def booking_completed(
    session: AsyncSession, payload: Mapping[str, Any], context: HandlerContext
) -> None:
    stay = await _stay(session, payload["booking_id"])
    await _tell(
        context,
        stay.guest,
        f"How was {stay.listing.title}?",
        "Thank you for staying. A review helps the next guests choose.",
        audience="guest",
    )


async def payment_failed(
    session: AsyncSession, payload: Mapping[str, Any], context: HandlerContext
) -> None:
    stay = await _stay(session, payload["booking_id"])
    await _tell(
        context,
        stay.guest,
        "Your payment did not go through",
        f"Your nights at {stay.listing.title} stay held for a few minutes: try another card.",
        audience="guest",
    )


HANDLERS: Mapping[str, Handler] = {
    "BookingRequested": booking_requested,
    "BookingConfirmed": booking_confirmed,
    "BookingCanceled": booking_canceled,
    "BookingCompleted": booking_completed,
    "PaymentFailed": payment_failed,
}
"""Events with nobody to tell yet (BookingCreated, PaymentRefunded, ...) are simply marked
processed; later features (in-app notifications, payouts) add their handlers here."""
