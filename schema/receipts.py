"""A payment's receipt: the lines of the price, the charge, the refunds and what was paid."""

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry.relay import to_base64

from db import states
from schema.listings import Address, MoneyType
from services import receipts
from services.receipts import Receipt

if TYPE_CHECKING:
    from schema.payments import PaymentProvider, PaymentStatus

# Registered as GraphQL enums by schema/payments.py, which imports this module.
Provider = Annotated["PaymentProvider", strawberry.lazy("schema.payments")]
Status = Annotated["PaymentStatus", strawberry.lazy("schema.payments")]

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


@strawberry.type(
    name="Receipt",
    description="An itemized receipt for a payment; for the host, their statement of the "
    "booking. Amounts in the payment's currency; the lines add up to `total`.",
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

    @classmethod
    def of(cls, receipt: Receipt) -> Self:
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
        )
