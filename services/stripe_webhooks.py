"""Stripe's webhook events, applied once each: one small handler per event type, in a registry.

An event is recorded in the transaction that applies it; the unique (provider, event_id) lets
one delivery of it through, so a redelivery, or ten at once, change nothing more. What a
PaymentIntent event says goes through ``checkout.provider_says``, as what the worker finds
by asking Stripe does: believed only when amount and currency are ours, and never moving a
payment backwards. A provider call it asks for (closing a declined intent, say) is left
REQUESTED for a worker to make: the webhook answers without calling anyone.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Payment, ProviderEvent
from db.states import PaymentProvider
from gateways.stripe import intent_report
from services import checkout, payouts
from services.bookings import BookingRules

log = logging.getLogger("roost.webhooks")

Handler = Callable[[AsyncSession, Mapping[str, Any], datetime, BookingRules], Awaitable[bool]]
"""Applies an event's object; answers whether it concerned a payment of ours."""


class Outcome(StrEnum):
    APPLIED = "APPLIED"
    REPLAYED = "REPLAYED"  # seen before: nothing done
    IGNORED = "IGNORED"  # a type no handler knows
    UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT"


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


async def on_charge_refunded(
    session: AsyncSession, charge: Mapping[str, Any], now: datetime, rules: BookingRules
) -> bool:
    """Roost's refunds are applied on Stripe's answer to asking for them; this confirms one.
    A refund made elsewhere (in Stripe's dashboard) is logged for a person to reconcile."""
    payment_id = await stripe_payment_id(
        session, charge.get("payment_intent"), charge.get("metadata")
    )
    if payment_id is None:
        return False
    log.info(
        "payment %s: Stripe reports %s %s refunded in all",
        payment_id, charge.get("amount_refunded"), charge.get("currency"),
    )  # fmt: skip
    return True


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.amount_capturable_updated": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.canceled": on_payment_intent,
    "payment_intent.processing": on_payment_intent,
    "charge.refunded": on_charge_refunded,
    # Host payouts (services/payouts.py).
    "account.updated": payouts.on_account_updated,
    "transfer.created": payouts.on_transfer_created,
    "transfer.reversed": payouts.on_transfer_reversed,
}


async def apply_event(
    session: AsyncSession, *, event: Mapping[str, Any], now: datetime, rules: BookingRules
) -> Outcome:
    """Records ``event`` (a verified Stripe Event) and applies it, unless it was seen before.
    An event of a type no handler knows is recorded as seen and left unprocessed."""
    recorded = await session.scalar(
        insert(ProviderEvent)
        .values(
            provider=PaymentProvider.STRIPE,
            event_id=event["id"],
            type=event["type"],
            received_at=now,
            payload=dict(event),
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(ProviderEvent.id)
    )
    if recorded is None:  # waited for the first delivery's transaction, which applied it
        return Outcome.REPLAYED
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return Outcome.IGNORED
    known = await handler(session, event["data"]["object"], now, rules)
    await session.execute(
        update(ProviderEvent).where(ProviderEvent.id == recorded).values(processed_at=now)
    )
    if not known:
        log.warning("Stripe event %s (%s): no payment of ours", event["id"], event["type"])
        return Outcome.UNKNOWN_PAYMENT
    return Outcome.APPLIED
