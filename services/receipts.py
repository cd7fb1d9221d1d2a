"""A payment's receipt: what the stay cost, what was charged, what went back, what was paid.

Built from what was stored, never priced again: the booking keeps its quote (the nights at
their prices, the fees and taxes, as last changed), the payment what was charged in all and
refunded, and the ledger (``payment_operation``) each movement the provider confirmed. What
the host is paid for the booking is their own statement (services/statements.py).
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from db.loaders import Loaders
from db.rows import BookingRow, LedgerRow, ListingRow, PaymentRow, UserRow
from db.states import OperationKind
from services.payments import captured_balance
from services.pricing import Price


class LineKind(StrEnum):
    NIGHTS = "NIGHTS"
    CLEANING_FEE = "CLEANING_FEE"
    SERVICE_FEE = "SERVICE_FEE"
    TAXES = "TAXES"


@dataclass(frozen=True)
class Line:
    """One part of the price: ``quantity`` nights (at ``unit_minor`` each, unless their prices
    vary), or a fee."""

    kind: LineKind
    label: str
    amount_minor: int
    quantity: int | None = None
    unit_minor: int | None = None


@dataclass(frozen=True)
class Refund:
    """A refund the provider confirmed."""

    refunded_at: datetime
    amount_minor: int
    provider_reference: str | None


@dataclass(frozen=True)
class Receipt:
    number: str
    payment_id: int
    booking_id: int
    issued_on: date
    payer_name: str
    listing_title: str
    address_line1: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str
    check_in: date
    check_out: date
    currency: str
    lines: tuple[Line, ...]
    total_minor: int
    """The stay's price: the lines add up to it."""
    charged_minor: int
    """What the guest was charged in all, a further charge for a longer stay included."""
    refunds: tuple[Refund, ...]
    refunded_minor: int
    net_paid_minor: int
    """Charged and kept: nothing until the money is taken."""
    provider: str
    provider_reference: str | None
    status: str

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days


def receipt_number(payment: PaymentRow) -> str:
    """Stable for the payment's life: its year and id, never what has happened to it since."""
    return f"R-{payment.created_at.year}-{payment.id:08d}"


# Nights at more prices than this show as one line of their sum: a receipt stays readable, and
# short enough that a page of them is cheap to ask for (schema/limits.py).
MAX_NIGHT_LINES = 5
MAX_LINES = MAX_NIGHT_LINES + 3


def _nights_label(count: int) -> str:
    return f"{count} night{'s' if count != 1 else ''}"


def _night_lines(night_prices: Sequence[int]) -> list[Line]:
    """Nights grouped by price, in the order the prices first come (a weekend rate, say)."""
    counts: dict[int, int] = {}
    for price in night_prices:
        counts[price] = counts.get(price, 0) + 1
    if len(counts) > MAX_NIGHT_LINES:
        nights = len(night_prices)
        return [Line(LineKind.NIGHTS, _nights_label(nights), sum(night_prices), quantity=nights)]
    return [
        Line(LineKind.NIGHTS, _nights_label(count), count * price, quantity=count, unit_minor=price)
        for price, count in counts.items()
    ]


@dataclass(frozen=True)
class Sources:
    """Everything a receipt is made from, as stored."""

    payment: PaymentRow
    booking: BookingRow
    listing: ListingRow
    payer: UserRow
    ledger: Sequence[LedgerRow]


def build(sources: Sources) -> Receipt:
    payment, booking, listing = sources.payment, sources.booking, sources.listing
    price = Price(
        currency=booking.currency,
        night_prices=tuple(booking.night_prices_minor),
        cleaning_fee=booking.cleaning_fee_minor,
        service_fee=booking.service_fee_minor,
        taxes=booking.taxes_minor,
    )
    lines = _night_lines(price.night_prices)
    if price.cleaning_fee:
        lines.append(Line(LineKind.CLEANING_FEE, "Cleaning fee", price.cleaning_fee))
    lines.append(Line(LineKind.SERVICE_FEE, "Service fee", price.service_fee))
    if price.taxes:
        lines.append(Line(LineKind.TAXES, "Occupancy taxes", price.taxes))
    taken = [e for e in sources.ledger if e.kind in (OperationKind.CAPTURE, OperationKind.CHARGE)]
    refunds = tuple(
        Refund(e.completed_at, e.amount_minor, e.provider_reference)
        for e in sources.ledger
        if e.kind == OperationKind.REFUND
    )
    return Receipt(
        number=receipt_number(payment),
        payment_id=payment.id,
        booking_id=booking.id,
        issued_on=(taken[0].completed_at if taken else payment.created_at).date(),
        payer_name=f"{sources.payer.first_name} {sources.payer.last_name}".strip(),
        listing_title=listing.title,
        address_line1=listing.address_line1,
        city=listing.city,
        region=listing.region,
        postal_code=listing.postal_code,
        country=listing.country,
        check_in=booking.check_in,
        check_out=booking.check_out,
        currency=payment.currency,
        lines=tuple(lines),
        total_minor=price.total,
        charged_minor=payment.amount_minor,
        refunds=refunds,
        refunded_minor=payment.refunded_minor,
        net_paid_minor=captured_balance(payment),
        provider=payment.provider,
        provider_reference=payment.provider_reference,
        status=payment.status,
    )


async def sources_of(loaders: Loaders, payment: PaymentRow) -> Sources:
    """A payment's sources, read through the request's loaders: a page of payments costs one
    batch of each kind, not a query per receipt."""
    booking, ledger = await asyncio.gather(
        loaders.booking_by_id.load_existing(payment.booking_id),
        loaders.ledger_by_payment.load(payment.id),
    )
    listing, payer = await asyncio.gather(
        loaders.listing_by_id.load_existing(booking.listing_id),
        loaders.user_by_id.load_existing(booking.guest_id),
    )
    return Sources(payment, booking, listing, payer, ledger)
