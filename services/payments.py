"""Payments: starting one for a booking, and every later movement of its money.

Each movement goes through the gateway with an idempotency key made from our own ids and is
written to the ledger (``payment_operation``) under the same key, in the transaction that
changes the booking. A repeated movement (a retried request, a worker run twice) finds its key
in the ledger and changes nothing.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Booking, Payment, PaymentOperation
from db.rows import PaymentRow
from db.states import (
    CAPTURED_PAYMENT,
    LIVE_PAYMENT,
    BookingStatus,
    OperationKind,
    PaymentStatus,
)
from gateways.payments import PaymentDeclined, PaymentGateway
from services import events
from services.errors import Conflict, InvalidInput, PaymentFailed

CAPTURED = CAPTURED_PAYMENT
LIVE = LIVE_PAYMENT


@dataclass(frozen=True)
class Gateways:
    """The payment providers this deployment can use, by API name."""

    by_provider: dict[str, PaymentGateway]

    def get(self, provider: str) -> PaymentGateway:
        gateway = self.by_provider.get(provider)
        if gateway is None:
            raise InvalidInput.field("provider", f"{provider} payments are not available")
        return gateway


@dataclass(frozen=True)
class StartedPayment:
    payment: Payment
    client_secret: str | None
    redirect_url: str | None


async def live_payment(session: AsyncSession, booking_id: int, *, lock: bool) -> Payment | None:
    query = select(Payment).where(Payment.booking_id == booking_id, Payment.status.in_(LIVE))
    return await session.scalar(query.with_for_update() if lock else query)


def captured_balance(payment: Payment | PaymentRow | None) -> int:
    """What the guest has paid and not had back."""
    if payment is None or payment.status not in CAPTURED:
        return 0
    return payment.amount_minor - payment.refunded_minor


def _record(
    session: AsyncSession,
    payment: Payment,
    kind: OperationKind,
    amount: int,
    key: str,
    reference: str,
) -> None:
    """Writes the movement to the ledger. Callers checked ``_already_done`` under the booking's
    lock; the key's unique index refuses a second entry should anything slip past."""
    session.add(
        PaymentOperation(
            payment_id=payment.id,
            kind=kind,
            amount_minor=amount,
            idempotency_key=key,
            provider_reference=reference,
        )
    )


async def _already_done(session: AsyncSession, key: str) -> bool:
    found = await session.scalar(
        select(PaymentOperation.id).where(PaymentOperation.idempotency_key == key)
    )
    return found is not None


async def next_key(session: AsyncSession, payment: Payment, purpose: str) -> str:
    """An idempotency key for the payment's next movement: its place in the ledger."""
    recorded = await session.scalar(
        select(func.count()).where(PaymentOperation.payment_id == payment.id)
    )
    return f"payment-{payment.id}-{purpose}-{recorded}"


async def start_payment(
    session: AsyncSession, *, booking: Booking, gateway: PaymentGateway
) -> StartedPayment:
    """A payment of the booking's total, for the guest to complete with the provider. Asking
    again while one is open answers that one."""
    if booking.status != BookingStatus.PENDING:
        raise Conflict("This booking is not waiting for a payment.")
    current = await live_payment(session, booking.id, lock=True)
    if current is not None and current.status != PaymentStatus.PENDING:
        raise Conflict("This booking is paid already.")
    if current is not None and current.provider == gateway.provider:
        intent = await gateway.create(
            amount_minor=current.amount_minor,
            currency=current.currency,
            description=f"Roost booking {booking.id}",
            idempotency_key=f"payment-{current.id}-create",
        )
        return StartedPayment(current, intent.client_secret, intent.redirect_url)
    if current is not None:  # the guest switched providers before paying
        current.status = PaymentStatus.CANCELED
        await session.flush()
    payment = Payment(
        booking_id=booking.id,
        provider=gateway.provider,
        status=PaymentStatus.PENDING,
        currency=booking.currency,
        amount_minor=booking.total_minor,
        refunded_minor=0,
    )
    session.add(payment)
    await session.flush()
    intent = await gateway.create(
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        description=f"Roost booking {booking.id}",
        idempotency_key=f"payment-{payment.id}-create",
    )
    payment.provider_reference = intent.reference
    await session.flush()
    return StartedPayment(payment, intent.client_secret, intent.redirect_url)


async def capture(
    session: AsyncSession, payment: Payment, gateway: PaymentGateway, *, now: datetime
) -> None:
    key = f"payment-{payment.id}-capture"
    if payment.status != PaymentStatus.AUTHORIZED or await _already_done(session, key):
        return
    try:
        reference = await gateway.capture(
            payment.provider_reference or "", amount_minor=payment.amount_minor, idempotency_key=key
        )
    except PaymentDeclined as declined:
        raise PaymentFailed(str(declined)) from None
    _record(session, payment, OperationKind.CAPTURE, payment.amount_minor, key, reference)
    payment.status = PaymentStatus.SUCCEEDED
    succeeded = events.PaymentSucceeded(payment.id, payment.booking_id, payment.amount_minor)
    events.emit(session, succeeded, now=now)


async def authorize(session: AsyncSession, payment: Payment, *, now: datetime) -> None:
    """The guest completed the payment with the provider: the amount is held for us."""
    key = f"payment-{payment.id}-authorize"
    _record(
        session,
        payment,
        OperationKind.AUTHORIZE,
        payment.amount_minor,
        key,
        payment.provider_reference or "",
    )
    payment.status = PaymentStatus.AUTHORIZED
    events.emit(session, events.PaymentAuthorized(payment.id, payment.booking_id), now=now)


async def fail(session: AsyncSession, payment: Payment, *, now: datetime) -> None:
    payment.status = PaymentStatus.FAILED
    events.emit(session, events.PaymentFailed(payment.id, payment.booking_id), now=now)


async def settle_cancellation(
    session: AsyncSession,
    payment: Payment | None,
    gateway: PaymentGateway | None,
    *,
    refund: int,
    now: datetime,
) -> None:
    """Gives back ``refund`` of a captured payment, or lets go of one never captured."""
    if payment is None or gateway is None:
        return
    if payment.status in (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED):
        key = f"payment-{payment.id}-release"
        if not await _already_done(session, key):
            if payment.status == PaymentStatus.AUTHORIZED:
                reference = await gateway.release(
                    payment.provider_reference or "", idempotency_key=key
                )
                _record(
                    session, payment, OperationKind.RELEASE, payment.amount_minor, key, reference
                )
            payment.status = PaymentStatus.CANCELED
        return
    await refund_amount(
        session, payment, gateway, amount=refund, key=f"payment-{payment.id}-cancel-refund", now=now
    )


async def refund_amount(
    session: AsyncSession,
    payment: Payment,
    gateway: PaymentGateway,
    *,
    amount: int,
    key: str,
    now: datetime,
) -> None:
    amount = min(amount, captured_balance(payment))
    if amount <= 0 or await _already_done(session, key):
        return
    try:
        reference = await gateway.refund(
            payment.provider_reference or "", amount_minor=amount, idempotency_key=key
        )
    except PaymentDeclined as declined:
        raise PaymentFailed(str(declined)) from None
    _record(session, payment, OperationKind.REFUND, amount, key, reference)
    payment.refunded_minor += amount
    payment.status = (
        PaymentStatus.REFUNDED
        if payment.refunded_minor == payment.amount_minor
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    events.emit(session, events.PaymentRefunded(payment.id, payment.booking_id, amount), now=now)


async def charge_more(
    session: AsyncSession,
    payment: Payment,
    gateway: PaymentGateway,
    *,
    amount: int,
    key: str,
    now: datetime,
) -> None:
    if amount <= 0 or await _already_done(session, key):
        return
    try:
        reference = await gateway.charge(
            payment.provider_reference or "",
            amount_minor=amount,
            currency=payment.currency,
            idempotency_key=key,
        )
    except PaymentDeclined as declined:
        raise PaymentFailed(str(declined)) from None
    _record(session, payment, OperationKind.CHARGE, amount, key, reference)
    payment.amount_minor += amount
    if payment.status == PaymentStatus.REFUNDED:
        payment.status = PaymentStatus.PARTIALLY_REFUNDED
    events.emit(session, events.PaymentSucceeded(payment.id, payment.booking_id, amount), now=now)
