"""The host's payout statement for a booking's payment: what the stay pays its host.

Once the worker has written the booking's payout (``payouts.create_due``), the statement is
that payout's figures and state. Until then it is what the worker would write now, by the same
rule (``pricing.host_payout``) on the same inputs: today's host fee, the refunds so far, the
payout provider's step; marked as an estimate. A canceled booking is never paid out
(``create_due`` pays COMPLETED stays only), so its statement says there is nothing to pay.
"""

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from db.loaders import Loaders
from db.rows import BookingRow, PaymentRow, PayoutRow
from db.states import ACTIVE_BOOKING, CAPTURED_PAYMENT, BookingStatus
from services.payments import Gateways, captured_balance
from services.payouts import PayoutPolicy, payout_gateway, payout_unit_of
from services.pricing import HostPayout, host_payout


class StatementStatus(StrEnum):
    """ESTIMATE and NOTHING_TO_PAY before any payout exists; then the payout's own status."""

    ESTIMATE = "ESTIMATE"
    NOTHING_TO_PAY = "NOTHING_TO_PAY"
    PENDING = "PENDING"
    SENDING = "SENDING"
    PAID = "PAID"
    FAILED = "FAILED"
    REVERSED = "REVERSED"


@dataclass(frozen=True)
class HostStatement:
    booking_id: int
    currency: str
    nights_minor: int
    cleaning_fee_minor: int
    host_fee_minor: int
    host_fee_percent: Decimal | None
    """The rate the host fee was taken at; None where it is not today's (or no fee is taken)."""
    refunds_minor: int
    amount_minor: int
    status: StatementStatus
    earned_on: date
    payout: PayoutRow | None

    @property
    def estimated(self) -> bool:
        return self.status == StatementStatus.ESTIMATE

    @property
    def paid_at(self) -> datetime | None:
        return self.payout.paid_at if self.payout is not None else None


def kept_for_payout(booking: BookingRow, payment: PaymentRow) -> int:
    """What the worker will count as the guest's payment: the money taken and not refunded
    (``create_due`` sums it over the booking's captured payments, of which there is at most
    one). A stay still ahead is paid for before it starts, so its payment counts as taken."""
    if booking.status in ACTIVE_BOOKING:
        return payment.amount_minor - payment.refunded_minor
    return captured_balance(payment)


def _split(booking: BookingRow, *, kept: int, percent: Decimal, unit: int) -> HostPayout:
    return host_payout(
        nightly_subtotal=sum(booking.night_prices_minor),
        cleaning_fee=booking.cleaning_fee_minor,
        total=booking.total_minor,
        kept=kept,
        host_fee_percent=percent,
        unit=unit,
    )


def build(
    *,
    booking: BookingRow,
    payment: PaymentRow,
    payout: PayoutRow | None,
    policy: PayoutPolicy,
    unit: int,
) -> HostStatement:
    percent = policy.host_fee_percent

    def statement(
        split: HostPayout, status: StatementStatus, fee_percent: Decimal | None
    ) -> HostStatement:
        return HostStatement(
            booking_id=booking.id,
            currency=booking.currency,
            nights_minor=sum(booking.night_prices_minor),
            cleaning_fee_minor=booking.cleaning_fee_minor,
            host_fee_minor=split.host_fee,
            host_fee_percent=fee_percent,
            refunds_minor=split.refunds,
            amount_minor=split.amount,
            status=status,
            earned_on=booking.check_in
            if booking.status == BookingStatus.CANCELED
            else booking.check_out,
            payout=payout,
        )

    if payout is not None:
        made = HostPayout(payout.amount_minor, payout.host_fee_minor, payout.refunds_minor)
        # The payout keeps its figures, not the rate: today's rate is shown only where it
        # gives the same figures again (the setting may have changed since).
        again = _split(booking, kept=booking.total_minor - made.refunds, percent=percent, unit=unit)
        return statement(made, StatementStatus(payout.status), percent if again == made else None)
    kept = kept_for_payout(booking, payment)
    if booking.status == BookingStatus.CANCELED and kept == 0:
        # Everything went back to the guest (or nothing was taken): no payout follows.
        refunds = payment.refunded_minor if payment.status in CAPTURED_PAYMENT else 0
        return statement(HostPayout(0, 0, refunds), StatementStatus.NOTHING_TO_PAY, None)
    # A cancellation the guest kept paying a share of pays the host that share.
    split = _split(booking, kept=kept, percent=percent, unit=unit)
    return statement(split, StatementStatus.ESTIMATE, percent)


async def statement_of(
    loaders: Loaders, payment: PaymentRow, *, policy: PayoutPolicy, gateways: Gateways
) -> HostStatement | None:
    """The statement on the receipt of ``payment``; None when the payment is not the one its
    booking is paid by (a failed try the guest has since made again). Read through the
    request's loaders: a page of receipts costs one batch of each kind."""
    booking, counted, payout = await asyncio.gather(
        loaders.booking_by_id.load_existing(payment.booking_id),
        loaders.payment_by_booking.load(payment.booking_id),
        loaders.payout_by_booking.load(payment.booking_id),
    )
    if counted is None or counted.id != payment.id:
        return None
    unit = payout_unit_of(payout_gateway(gateways))(booking.currency)
    return build(booking=booking, payment=payment, payout=payout, policy=policy, unit=unit)
