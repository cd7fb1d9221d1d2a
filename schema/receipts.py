"""A payment's receipt: the lines of the price, the charge, the refunds and what was paid."""

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry.relay import to_base64

from db import states
from db.rows import PaymentRow
from resolvers import receipts as receipt_resolvers
from schema.context import Info
from schema.listings import Address, MoneyType
from services import receipts, statements
from services.receipts import Receipt
from services.statements import HostStatement

if TYPE_CHECKING:
    from schema.payments import PaymentProvider, PaymentStatus
    from schema.payouts import PayoutType

# Registered as GraphQL enums by schema/payments.py, which imports this module.
Provider = Annotated["PaymentProvider", strawberry.lazy("schema.payments")]
Status = Annotated["PaymentStatus", strawberry.lazy("schema.payments")]
# schema/payouts.py reaches this module through bookings and payments.
Payout = Annotated["PayoutType", strawberry.lazy("schema.payouts")]

ReceiptLineKind = receipts.LineKind
strawberry.enum(
    ReceiptLineKind, name="ReceiptLineKind", description="What a line of a receipt charges for."
)


@strawberry.type(description="One part of the price on a receipt.")
class ReceiptLine:
    kind: ReceiptLineKind
    label: str = strawberry.field(description='For display: "3 nights", "Cleaning fee".')
    quantity: int | None = strawberry.field(description="NIGHTS: how many.")
    unit_amount: MoneyType | None = strawberry.field(
        description="NIGHTS: the price of each; null when they vary (more than 5 prices)."
    )
    amount: MoneyType


@strawberry.type(description="A refund the provider confirmed.")
class ReceiptRefund:
    refunded_at: datetime
    amount: MoneyType
    provider_reference: str | None = strawberry.field(description="The provider's refund id.")


HostStatementStatus = statements.StatementStatus
strawberry.enum(
    HostStatementStatus,
    name="HostStatementStatus",
    description="Where the host's payout for a booking is. ESTIMATE: no payout yet (the stay "
    "is ahead, or ended less than the payout delay ago, a day by default); NOTHING_TO_PAY: "
    "the booking was canceled, and no payout is made for it; then the payout's own status "
    "(see PayoutStatus).",
)


@strawberry.type(
    name="HostStatement",
    description="What the host is paid for the booking: nights plus cleaning, less Roost's "
    "host fee and the refunds the host bears. In the booking's currency, exact to its minor "
    "unit; once the payout is made, its own figures.",
)
class HostStatementType:
    status: HostStatementStatus
    estimated: bool = strawberry.field(
        description="True while no payout exists: the figures are what it would be if made now "
        "(today's host fee, the refunds so far), and may still change."
    )
    currency: str = strawberry.field(description="ISO 4217 code.")
    nights_subtotal: MoneyType = strawberry.field(description="The nights at their prices.")
    cleaning_fee: MoneyType
    host_fee: MoneyType = strawberry.field(
        description="Roost's fee on the host's side (with the few minor units the payout "
        "provider cannot move, when the payout is rounded down to its step)."
    )
    host_fee_percent: Decimal | None = strawberry.field(
        description='The host fee\'s rate, "3" for 3%; null with NOTHING_TO_PAY, and for a '
        "payout made at another rate than today's."
    )
    refunds: MoneyType = strawberry.field(
        description="Given back to the guest and borne by the host: what the guest's payment "
        "falls short of the booking's price (a shorter stay's difference is not one); with "
        "NOTHING_TO_PAY, what was given back."
    )
    amount: MoneyType = strawberry.field(description="Paid (or to be paid) to the host.")
    earned_on: date = strawberry.field(description="The stay's check-out day.")
    paid_at: datetime | None = strawberry.field(description="When the payout was sent (PAID).")
    _statement: strawberry.Private[HostStatement]

    @strawberry.field(
        description="The payout itself, once made (its next attempt, a failure's reason)."
    )
    def payout(self) -> Payout | None:
        from schema.payouts import PayoutType  # an import cycle: see Payout

        row = self._statement.payout
        return PayoutType.from_row(row) if row is not None else None

    @classmethod
    def of(cls, statement: HostStatement) -> Self:
        currency = statement.currency

        def money(minor: int) -> MoneyType:
            return MoneyType.of(minor, currency, booking_id=statement.booking_id)

        return cls(
            status=statement.status,
            estimated=statement.estimated,
            currency=currency,
            nights_subtotal=money(statement.nights_minor),
            cleaning_fee=money(statement.cleaning_fee_minor),
            host_fee=money(statement.host_fee_minor),
            host_fee_percent=statement.host_fee_percent,
            refunds=money(statement.refunds_minor),
            amount=money(statement.amount_minor),
            earned_on=statement.earned_on,
            paid_at=statement.paid_at,
            _statement=statement,
        )


@strawberry.type(
    name="Receipt",
    description="An itemized receipt for a payment; for the host and admins, the host's "
    "payout statement too. Amounts in the payment's currency; the lines add up to `total`.",
)
class ReceiptType:
    number: str = strawberry.field(description='Stable for the payment: "R-2027-00000042".')
    issued_on: date = strawberry.field(description="When the money was taken (UTC).")
    payer_name: str
    listing_title: str
    address: Address
    check_in: date
    check_out: date
    nights: int
    currency: str = strawberry.field(description="ISO 4217 code.")
    lines: list[ReceiptLine] = strawberry.field(
        description="Nights grouped by price, the cleaning fee, the service fee and taxes (a fee "
        "of zero is left out, the service fee aside)."
    )
    total: MoneyType = strawberry.field(description="The stay's price: the lines' sum.")
    charged: MoneyType = strawberry.field(
        description="Charged in all, a further charge for a longer stay included."
    )
    refunds: list[ReceiptRefund] = strawberry.field(description="Oldest first.")
    refunded: MoneyType
    net_paid: MoneyType = strawberry.field(
        description="Charged less refunded; zero until the money is taken."
    )
    provider: Provider
    provider_reference: str | None = strawberry.field(description="The provider's payment id.")
    status: Status
    pdf_url: str = strawberry.field(
        description="`GET` it with the same bearer token for the PDF: `/receipts/{paymentId}`."
    )
    _payment: strawberry.Private[PaymentRow]

    @strawberry.field(
        description="What the listing's host is paid for the booking; null for anyone but the "
        "host and admins, and on the receipt of a failed try the guest has since made again."
    )
    async def host_statement(self, info: Info) -> HostStatementType | None:
        found = await receipt_resolvers.host_statement(info, self._payment)
        return HostStatementType.of(found) if found is not None else None

    @classmethod
    def of(cls, receipt: Receipt, payment: PaymentRow) -> Self:
        currency = receipt.currency

        def money(minor: int) -> MoneyType:
            return MoneyType.of(minor, currency, booking_id=receipt.booking_id)

        return cls(
            number=receipt.number,
            issued_on=receipt.issued_on,
            payer_name=receipt.payer_name,
            listing_title=receipt.listing_title,
            address=Address(
                line1=receipt.address_line1,
                city=receipt.city,
                region=receipt.region,
                postal_code=receipt.postal_code,
                country=receipt.country,
            ),
            check_in=receipt.check_in,
            check_out=receipt.check_out,
            nights=receipt.nights,
            currency=currency,
            lines=[
                ReceiptLine(
                    kind=line.kind,
                    label=line.label,
                    quantity=line.quantity,
                    unit_amount=money(line.unit_minor) if line.unit_minor is not None else None,
                    amount=money(line.amount_minor),
                )
                for line in receipt.lines
            ],
            total=money(receipt.total_minor),
            charged=money(receipt.charged_minor),
            refunds=[
                ReceiptRefund(
                    refunded_at=refund.refunded_at,
                    amount=money(refund.amount_minor),
                    provider_reference=refund.provider_reference,
                )
                for refund in receipt.refunds
            ],
            refunded=money(receipt.refunded_minor),
            net_paid=money(receipt.net_paid_minor),
            provider=states.PaymentProvider(receipt.provider),
            provider_reference=receipt.provider_reference,
            status=states.PaymentStatus(receipt.status),
            pdf_url=f"/receipts/{to_base64('Payment', receipt.payment_id)}",
            _payment=payment,
        )
