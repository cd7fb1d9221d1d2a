"""M-Pesa's callbacks, applied once each.

An STK callback is recorded as a provider event (its id: the push's CheckoutRequestID and the
ResultCode), so a redelivery changes nothing. What it says goes through
``checkout.provider_says``, as what the worker finds by asking M-Pesa does: believed only when
the amount paid is the payment's, and never moving a payment backwards.

A B2C refund's result (or its queue timeout, or the answer to a status query about it) is
recorded the same way and goes through ``checkout.provider_refund``, as a Stripe refund's
webhook does: matched to our refund by its OriginatorConversationID (our idempotency key),
believed only for the amount we asked.
"""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Payment
from db.states import PaymentProvider
from gateways.mpesa import CURRENCY, PAID, B2cResult, RefundOutcome, StkResult
from services import checkout, payments, provider_events
from services.bookings import BookingRules
from services.provider_events import Outcome

log = logging.getLogger("roost.webhooks")


async def apply_callback(
    session: AsyncSession,
    *,
    result: StkResult,
    payload: Mapping[str, Any],
    now: datetime,
    rules: BookingRules,
) -> Outcome:
    """Records the callback ``payload`` (parsed as ``result``) and applies it, unless it was
    seen before."""
    recorded = await provider_events.record(
        session,
        provider=PaymentProvider.MPESA,
        event_id=result.event_id,
        type="stkCallback",
        payload=payload,
        now=now,
    )
    if recorded is None:
        return Outcome.REPLAYED
    payment_id = await session.scalar(
        select(Payment.id).where(
            Payment.provider == PaymentProvider.MPESA,
            Payment.provider_reference == result.checkout_request_id,
        )
    )
    await provider_events.processed(session, recorded, now=now)
    paid = result.result_code == PAID
    if payment_id is None:
        # A push whose reference a crash lost before it was written, or not ours.
        (log.error if paid else log.warning)(
            "M-Pesa callback for %s (ResultCode %s, receipt %s): no payment of ours",
            result.checkout_request_id, result.result_code, result.receipt,
        )  # fmt: skip
        return await provider_events.noted(session, recorded, Outcome.UNKNOWN_PAYMENT)
    # A prompt answered after Roost let its payment go (the hold lapsed) is refunded in full
    # by ``provider_says``, to the number that paid.
    call = await checkout.provider_says(
        session, payment_id=payment_id, report=result.report(), now=now, rules=rules
    )
    if call is not None:
        log.info("payment %s: operation %s left to a worker", payment_id, call.operation_id)
    return await provider_events.noted(session, recorded, Outcome.APPLIED)


async def apply_refund_result(
    session: AsyncSession,
    *,
    result: B2cResult,
    type: str,
    payload: Mapping[str, Any],
    now: datetime,
) -> Outcome:
    """Records what Daraja posted about a B2C refund (``type``: its result, its timeout, a
    status query's answer) and applies it, unless it was seen before: succeeded, the refund
    is done and the payment moves; failed, the refund is FAILED (for a person) and nothing
    moves; anything else leaves it waiting for the worker to ask again."""
    recorded = await provider_events.record(
        session, provider=PaymentProvider.MPESA, event_id=result.event_id, type=type,
        payload=payload, now=now,
    )  # fmt: skip
    if recorded is None:
        return Outcome.REPLAYED
    await provider_events.processed(session, recorded, now=now)
    key = result.originator_conversation_id
    entry = await payments.find_refund(
        session, provider=PaymentProvider.MPESA, reference=key, key=key
    )
    if entry is None:
        (log.error if result.outcome == RefundOutcome.SUCCEEDED else log.warning)(
            "M-Pesa %s for B2C %s / %s (ResultCode %s, receipt %s): no refund of ours",
            type, key, result.conversation_id, result.result_code, result.transaction_id,
        )  # fmt: skip
        return await provider_events.noted(session, recorded, Outcome.UNKNOWN_PAYMENT)
    if result.outcome == RefundOutcome.WAITING:
        # A timeout usually means M-Pesa never processed it: if the worker's status queries
        # keep finding nothing, a person pays it (the same key cannot be sent again).
        (log.warning if result.event_id.startswith("timeout:") else log.info)(
            "M-Pesa refund %s of payment %s: %s says nothing final (%s %s); asked again later",
            key, entry.payment_id, type, result.result_code, result.result_desc,
        )  # fmt: skip
        return await provider_events.noted(session, recorded, Outcome.APPLIED)
    if result.outcome == RefundOutcome.SUCCEEDED:
        answer = payments.Answer(reference=result.transaction_id or result.conversation_id)
    else:
        answer = payments.Answer(
            declined=f"M-Pesa refused the refund ({result.result_code}: {result.result_desc})"
        )
    await checkout.provider_refund(
        session,
        provider=PaymentProvider.MPESA,
        reference=key or "",
        key=key,
        # A failure names no amount: it is about our request, of our amount.
        amount_minor=entry.amount_minor if result.amount_minor is None else result.amount_minor,
        currency=CURRENCY,
        answer=answer,
        now=now,
    )
    return await provider_events.noted(session, recorded, Outcome.APPLIED)
