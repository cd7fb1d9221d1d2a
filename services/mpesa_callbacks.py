"""M-Pesa's STK callbacks, applied once each.

A callback is recorded as a provider event (its id: the push's CheckoutRequestID and the
ResultCode), so a redelivery changes nothing. What it says goes through
``checkout.provider_says``, as what the worker finds by asking M-Pesa does: believed only when
the amount paid is the payment's, and never moving a payment backwards.
"""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Payment
from db.states import PaymentProvider, PaymentStatus
from gateways.mpesa import PAID, StkResult
from services import checkout, provider_events
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
    found = (
        await session.execute(
            select(Payment.id, Payment.status).where(
                Payment.provider == PaymentProvider.MPESA,
                Payment.provider_reference == result.checkout_request_id,
            )
        )
    ).first()
    await provider_events.processed(session, recorded, now=now)
    paid = result.result_code == PAID
    if found is None:
        # A push whose reference a crash lost before it was written, or not ours.
        (log.error if paid else log.warning)(
            "M-Pesa callback for %s (ResultCode %s, receipt %s): no payment of ours",
            result.checkout_request_id, result.result_code, result.receipt,
        )  # fmt: skip
        return Outcome.UNKNOWN_PAYMENT
    payment_id, status = found
    if paid and status in (PaymentStatus.CANCELED, PaymentStatus.FAILED):
        # The prompt was answered after Roost let the payment go (the hold lapsed, the guest
        # paid another way): M-Pesa took money nobody will refund on their own.
        log.error(
            "payment %s: paid with M-Pesa (receipt %s) after it was %s; refund it by hand",
            payment_id, result.receipt, status,
        )  # fmt: skip
    call = await checkout.provider_says(
        session, payment_id=payment_id, report=result.report(), now=now, rules=rules
    )
    if call is not None:
        log.info("payment %s: operation %s left to a worker", payment_id, call.operation_id)
    return Outcome.APPLIED
