"""Stripe's webhook events, applied once each (``services/provider_events.py``): one small
handler per event type, in a registry. What a PaymentIntent event says goes through
``checkout.provider_says``, as what the worker finds by asking Stripe does: believed only when
amount and currency are ours, and never moving a payment backwards. A Refund's word is the
answer to asking for it (``checkout.provider_refund``). A provider call an event asks for
(closing a declined intent, say) is left REQUESTED for a worker to make: the webhook answers
without calling anyone.
"""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Payment
from db.states import PaymentProvider
from gateways.stripe import REFUND_KEY, REFUND_WAITING, from_stripe, intent_report
from services import checkout, payments, payouts, provider_events
from services.bookings import BookingRules
from services.provider_events import Handler, Outcome

log = logging.getLogger("roost.webhooks")


async def stripe_payment_id(
    session: AsyncSession, intent_id: str | None, metadata: Mapping[str, Any] | None
) -> int | None:
    """Our payment for an intent: by its id, or by the payment id we gave it as metadata
    (when the intent's id was not yet written), never another provider's or intent's."""
    if not intent_id:
        return None
    stripe = Payment.provider == PaymentProvider.STRIPE
    found = await session.scalar(
        select(Payment.id).where(stripe, Payment.provider_reference == intent_id)
    )
    named = (metadata or {}).get("payment_id")
    if found is None and isinstance(named, str) and named.isdigit():
        found = await session.scalar(
            select(Payment.id).where(
                stripe,
                Payment.id == int(named),
                or_(Payment.provider_reference.is_(None), Payment.provider_reference == intent_id),
            )
        )
    return found


async def on_payment_intent(
    session: AsyncSession, intent: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """Any PaymentIntent event: its status says where the payment stands (the event's type
    only says what changed), read as the worker reads a retrieved intent."""
    payment_id = await stripe_payment_id(session, intent.get("id"), intent.get("metadata"))
    if payment_id is None:
        return False
    call = await checkout.provider_says(
        session, payment_id=payment_id, report=intent_report(intent), now=now, rules=rules
    )
    if call is not None:
        log.info("payment %s: operation %s left to a worker", payment_id, call.operation_id)
    return True


async def on_refund(
    session: AsyncSession, refund: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """A Refund created, updated or failed: one of ours is done when it ``succeeded`` (the
    payment moves only then), still waiting while ``pending`` or ``requires_action``, and
    moves nothing once ``failed`` or ``canceled``. Another's (made in the dashboard) is
    recorded from ``charge.refunded``."""
    refund_id, status = str(refund.get("id", "")), refund.get("status")
    currency = str(refund.get("currency", "")).upper()
    if status == "succeeded":
        answer = payments.Answer(reference=refund_id)
    elif status in REFUND_WAITING:
        answer = payments.Answer(reference=refund_id, pending=True)
    else:
        reason = refund.get("failure_reason") or status
        answer = payments.Answer(declined=f"Stripe refused the refund ({reason})")
    key = (refund.get("metadata") or {}).get(REFUND_KEY)
    if await checkout.provider_refund(
        session,
        provider=PaymentProvider.STRIPE,
        reference=refund_id,
        key=key if isinstance(key, str) else None,
        amount_minor=from_stripe(int(refund.get("amount", 0)), currency),
        currency=currency,
        answer=answer,
        now=now,
    ):
        return True
    return await stripe_payment_id(session, refund.get("payment_intent"), None) is not None


async def on_charge_refunded(
    session: AsyncSession, charge: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """A charge refunded, in part or whole. Its refunds, when the event lists them (older API
    versions), are read as their own events are; then what Stripe has refunded in all beyond
    what the ledger knows (our refunds in flight included) was refunded outside Roost, in
    Stripe's dashboard: recorded once, never past what was captured."""
    payment_id = await stripe_payment_id(
        session, charge.get("payment_intent"), charge.get("metadata")
    )
    if payment_id is None:
        return False
    listed = charge.get("refunds")
    for refund in (listed.get("data") or []) if isinstance(listed, Mapping) else []:
        if isinstance(refund, Mapping):
            await on_refund(session, refund, now, rules)
    currency = str(charge.get("currency", "")).upper()
    ours = await session.scalar(select(Payment.currency).where(Payment.id == payment_id))
    if currency != ours:
        log.warning("payment %s: Stripe reports a refund in %s; ignored", payment_id, currency)
        return True
    refunded_in_all = int(charge.get("amount_refunded", 0))
    await checkout.refunded_elsewhere(
        session,
        payment_id=payment_id,
        refunded_in_all=from_stripe(refunded_in_all, currency),
        # Stripe's running total names it: a later event saying the same total is the same.
        key=f"payment-{payment_id}-stripe-refunded-{refunded_in_all}",
        reference=str(charge.get("id", "")),
        now=now,
    )
    return True


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.amount_capturable_updated": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.canceled": on_payment_intent,
    "payment_intent.processing": on_payment_intent,
    "charge.refunded": on_charge_refunded,
    "refund.created": on_refund,
    "refund.updated": on_refund,
    "refund.failed": on_refund,
    "charge.refund.updated": on_refund,
    # Host payouts (services/payouts.py).
    "account.updated": payouts.on_account_updated,
    "transfer.created": payouts.on_transfer_created,
    "transfer.reversed": payouts.on_transfer_reversed,
}


async def apply_event(
    session: AsyncSession, *, event: Mapping[str, Any], now: datetime, rules: BookingRules
) -> Outcome:
    """Records ``event`` (a verified Stripe Event) and applies it, unless it was seen before."""
    return await provider_events.apply_event(
        session,
        provider=PaymentProvider.STRIPE,
        event_id=event["id"],
        event_type=event["type"],
        resource=event["data"]["object"],
        payload=event,
        handlers=HANDLERS,
        now=now,
        rules=rules,
    )
