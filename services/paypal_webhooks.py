"""PayPal's webhook events (verified by the route with PayPal's verify-webhook-signature),
applied once each (``services/provider_events.py``): one small handler per event type, in a
registry, as Stripe's.

What a capture or an authorization event says goes through ``checkout.provider_says``, as what
the worker finds by asking PayPal does: believed only when amount and currency are ours, never
moving a payment backwards. A refund's word is the answer to asking for it
(``checkout.provider_refund``); a refund or reversal PayPal made without us is recorded once.
An approved order needs a call to PayPal (its capture, or its authorization for a request to
book): the handler only marks the payment due for the worker's look-up, and ``after_commit``
makes that look-up as soon as the event's transaction has committed.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Payment, PaymentOperation
from db.states import CAPTURED_PAYMENT, OperationKind, PaymentProvider, PaymentStatus
from gateways.payments import PaymentLookup, ProviderReport, Reported
from gateways.paypal import from_paypal
from services import checkout, payments, provider_events
from services.bookings import BookingRules
from services.checkout import Transaction
from services.payments import Gateways
from services.provider_events import Handler, Outcome

log = logging.getLogger("roost.webhooks")

PAYPAL = PaymentProvider.PAYPAL
INVOICE_PREFIX = "roost-payment-"  # the invoice_id the gateway gives an order's purchase unit


async def paypal_payment_id(
    session: AsyncSession, order_id: object, invoice_id: object = None
) -> int | None:
    """Our payment for an order: by the order's id, or by the invoice id we gave it (when the
    order's id was not yet written), never another provider's or order's."""
    if isinstance(order_id, str) and order_id:
        found = await session.scalar(
            select(Payment.id).where(
                Payment.provider == PAYPAL, Payment.provider_reference == order_id
            )
        )
        if found is not None:
            return found
    named = invoice_id.removeprefix(INVOICE_PREFIX) if isinstance(invoice_id, str) else ""
    if not named.isdigit():
        return None
    reference = or_(
        Payment.provider_reference.is_(None),
        Payment.provider_reference == (order_id if isinstance(order_id, str) else None),
    )
    return await session.scalar(
        select(Payment.id).where(Payment.provider == PAYPAL, Payment.id == int(named), reference)
    )


def _order_of(resource: Mapping[str, Any]) -> object:
    """The order a capture or an authorization belongs to."""
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    return related.get("order_id")


def _amount(resource: Mapping[str, Any]) -> tuple[int, str] | None:
    amount = resource.get("amount")
    if not isinstance(amount, Mapping):
        units = resource.get("purchase_units") or [{}]
        amount = units[0].get("amount") if isinstance(units[0], Mapping) else None
    if not isinstance(amount, Mapping):
        return None
    try:
        return from_paypal(amount), str(amount["currency_code"])
    except (KeyError, ValueError, ArithmeticError):
        return None


async def _says(
    session: AsyncSession,
    resource: Mapping[str, Any],
    state: Reported,
    now: datetime,
    rules: BookingRules,
    *,
    reference: str | None = None,
    reason: str | None = None,
) -> int | None:
    """Applies what a capture or an authorization says of its payment; answers the payment."""
    payment_id = await paypal_payment_id(session, _order_of(resource), resource.get("invoice_id"))
    amount = _amount(resource)
    if payment_id is None or amount is None:
        return None
    report = ProviderReport(state, *amount, reference=reference, reason=reason)
    call = await checkout.provider_says(
        session, payment_id=payment_id, report=report, now=now, rules=rules
    )
    if call is not None:
        log.info("payment %s: operation %s left to a worker", payment_id, call.operation_id)
    return payment_id


async def on_order_approved(
    session: AsyncSession, order: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """The buyer approved the order at PayPal. Nothing is held yet: the order is captured
    (or, for a request to book, authorized) by asking PayPal, which a webhook never does in
    its transaction, so the payment is marked due for the look-up that does."""
    payment_id = await paypal_payment_id(session, order.get("id"), _invoice_of(order))
    if payment_id is None:
        return False
    amount = _amount(order)
    payment = await payments.lock_payment(session, payment_id)
    if payment is None or amount != (payment.amount_minor, payment.currency):
        log.warning("payment %s: PayPal reports an order of %s; ignored", payment_id, amount)
        return True
    if payment.status == PaymentStatus.PENDING:
        payment.check_at = now
    return True


def _invoice_of(order: Mapping[str, Any]) -> object:
    units = order.get("purchase_units") or [{}]
    return units[0].get("invoice_id") if isinstance(units[0], Mapping) else None


async def on_capture_completed(
    session: AsyncSession, capture: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """The money is taken (as the capture Roost asked for answers it, or as a capture whose
    answer was lost): the payment succeeds, once."""
    reference = str(capture.get("id", ""))
    paid = await _says(session, capture, Reported.CAPTURED, now, rules, reference=reference)
    return paid is not None


async def on_capture_denied(
    session: AsyncSession, capture: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """A capture PayPal denied (one it had left PENDING): a payment still waiting fails; one
    recorded as paid is for a person to look into, since no money came."""
    reason = (capture.get("status_details") or {}).get("reason") or "PayPal denied the capture."
    payment_id = await _says(session, capture, Reported.FAILED, now, rules, reason=str(reason))
    if payment_id is None:
        return False
    status = await session.scalar(select(Payment.status).where(Payment.id == payment_id))
    if status in CAPTURED_PAYMENT:
        log.error("payment %s: PayPal denied capture %s after it was recorded", payment_id,
                  capture.get("id"))  # fmt: skip
    return True


async def on_authorization_voided(
    session: AsyncSession, authorization: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """A hold voided (by Roost's release, or lapsed after PayPal's 29 days): a payment still
    held is let go."""
    return await _says(session, authorization, Reported.CANCELED, now, rules) is not None


def _capture_of(refund: Mapping[str, Any]) -> str | None:
    """The capture a refund returns money of: its ``up`` link."""
    for link in refund.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "up":
            href = str(link.get("href", ""))
            if "/captures/" in href:
                return href.rstrip("/").rsplit("/", 1)[-1]
    return None


async def on_capture_refunded(
    session: AsyncSession, refund: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """A refund of a capture: one of ours is done when COMPLETED, still waiting while PENDING,
    and moves nothing once FAILED or CANCELLED. One PayPal made without us (in its dashboard,
    or a reversal) is recorded once, when COMPLETED, never past what was captured."""
    refund_id, status = str(refund.get("id", "")), refund.get("status")
    amount = _amount(refund)
    if not refund_id or amount is None:
        return False
    if status == "COMPLETED":
        answer = payments.Answer(reference=refund_id)
    elif status == "PENDING":
        answer = payments.Answer(reference=refund_id, pending=True)
    else:
        answer = payments.Answer(declined=f"PayPal's refund is {status}.")
    key = refund.get("custom_id")
    if await checkout.provider_refund(
        session,
        provider=PAYPAL,
        reference=refund_id,
        key=key if isinstance(key, str) else None,
        amount_minor=amount[0],
        currency=amount[1],
        answer=answer,
        now=now,
    ):
        return True
    payment_id = await _payment_of_capture(session, _capture_of(refund), refund.get("invoice_id"))
    if payment_id is None:
        return False
    currency = await session.scalar(select(Payment.currency).where(Payment.id == payment_id))
    if status == "COMPLETED" and currency == amount[1]:
        await checkout.refunded_elsewhere(
            session,
            payment_id=payment_id,
            amount=amount[0],
            key=f"payment-{payment_id}-paypal-refund-{refund_id}",
            reference=refund_id,
            now=now,
        )
    return True


async def _payment_of_capture(
    session: AsyncSession, capture_id: str | None, invoice_id: object
) -> int | None:
    if capture_id:
        found = await session.scalar(
            select(Payment.id)
            .join(PaymentOperation, PaymentOperation.payment_id == Payment.id)
            .where(
                Payment.provider == PAYPAL,
                PaymentOperation.kind == OperationKind.CAPTURE,
                PaymentOperation.provider_reference == capture_id,
            )
        )
        if found is not None:
            return found
    return await paypal_payment_id(session, None, invoice_id)


HANDLERS: dict[str, Handler] = {
    "CHECKOUT.ORDER.APPROVED": on_order_approved,
    "PAYMENT.CAPTURE.COMPLETED": on_capture_completed,
    "PAYMENT.CAPTURE.DENIED": on_capture_denied,
    "PAYMENT.CAPTURE.DECLINED": on_capture_denied,
    "PAYMENT.AUTHORIZATION.VOIDED": on_authorization_voided,
    "PAYMENT.CAPTURE.REFUNDED": on_capture_refunded,
    "PAYMENT.CAPTURE.REVERSED": on_capture_refunded,
}


def well_formed(event: Mapping[str, Any]) -> bool:
    return (
        isinstance(event.get("id"), str)
        and isinstance(event.get("event_type"), str)
        and isinstance(event.get("resource"), dict)
    )


async def apply_event(
    session: AsyncSession, *, event: Mapping[str, Any], now: datetime, rules: BookingRules
) -> Outcome:
    """Records ``event`` (a verified, well-formed PayPal event) and applies it, unless it was
    seen before."""
    return await provider_events.apply_event(
        session,
        provider=PAYPAL,
        event_id=event["id"],
        event_type=event["event_type"],
        resource=event["resource"],
        payload=event,
        handlers=HANDLERS,
        now=now,
        rules=rules,
    )


def after_commit(
    transaction: Transaction,
    gateways: Gateways,
    event: Mapping[str, Any],
    *,
    clock: Callable[[], datetime],
    rules: BookingRules,
) -> Callable[[], Awaitable[None]] | None:
    """What an applied event leaves to do once committed: an approved order is looked up at
    PayPal (authorized there for a request to book) and the answer applied, its capture made,
    as the worker's check does; the worker does it instead if this fails."""
    if event.get("event_type") != "CHECKOUT.ORDER.APPROVED":
        return None
    gateway = gateways.by_provider.get(PAYPAL)
    if not isinstance(gateway, PaymentLookup):
        return None
    return partial(
        _check_order, transaction, gateways, gateway, str(event["resource"].get("id", "")),
        clock=clock, rules=rules,
    )  # fmt: skip


async def _check_order(
    transaction: Transaction,
    gateways: Gateways,
    gateway: PaymentLookup,
    order_id: str,
    *,
    clock: Callable[[], datetime],
    rules: BookingRules,
) -> None:
    try:
        report = await gateway.look_up(order_id)
        call = await transaction(
            partial(_order_says, order_id=order_id, report=report, now=clock(), rules=rules)
        )
        await checkout.settle(transaction, gateways, call, clock=clock)
    except Exception:
        log.warning("PayPal order %s: not checked now; the worker will", order_id, exc_info=True)


async def _order_says(
    session: AsyncSession,
    *,
    order_id: str,
    report: ProviderReport,
    now: datetime,
    rules: BookingRules,
) -> payments.ProviderCall | None:
    payment_id = await paypal_payment_id(session, order_id)
    if payment_id is None:
        return None
    return await checkout.provider_says(
        session, payment_id=payment_id, report=report, now=now, rules=rules
    )
