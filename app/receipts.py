"""``GET /receipts/{paymentId}``: a payment's receipt as a PDF, for its payer, the listing's
host and admins; for the host and admins it ends with the host's payout statement, which the
guest's never shows. Anyone else, signed in or not, hears the same 404 as for a payment that
does not exist.

Rendered with fpdf2's core fonts, which hold Latin-1 only: every text is made printable in
them first (``printable``), so no title or name can make rendering fail, and amounts carry the
currency's ISO code rather than a sign those fonts lack (€, ₹).
"""

import unicodedata
from datetime import date
from decimal import Decimal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from app.authentication import authenticate_request
from app.rest import error_response
from auth import rules
from db.loaders import Loaders
from db.states import UserStatus
from resolvers.node import node_id
from services import receipts, statements
from services.errors import InvalidInput
from services.money import Money
from services.receipts import Receipt
from services.statements import HostStatement, StatementStatus

# Characters of a user's text kept in print: enough for any real name, title or address.
NAME_CHARS = 80
TITLE_CHARS = 120
ADDRESS_CHARS = 160
REFERENCE_CHARS = 80
REFUND_REFERENCE_CHARS = 32  # beside the refund's date, on one line with its amount
PROVIDER_NAMES = {"PAYPAL": "PayPal", "MPESA": "M-Pesa"}

_PLAIN = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"',
        "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...",
        "\u2022": "*", "\u20ac": "EUR", "\u00a0": " ",
    }
)  # fmt: skip


def printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters and written in Latin-1: typographic marks as their
    plain forms, accents kept where Latin-1 has the letter and dropped where it has not
    (ő as o), anything else (kana, emoji, controls) as "?"."""
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    out = []
    for char in unicodedata.normalize("NFC", text).translate(_PLAIN):
        if unicodedata.category(char)[0] == "C":
            out.append(" ")
        elif ord(char) < 256:
            out.append(char)
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            out.append(base if base and all(ord(c) < 128 for c in base) else "?")
    return "".join(out)


def _money(minor: int, currency: str) -> str:
    return Money(minor, currency).with_code().replace("\u00a0", " ")


def _day(day: date) -> str:
    return day.strftime("%d %b %Y")


def _percent(percent: Decimal) -> str:
    return f"{percent.normalize():f}%"


def _statement_state(statement: HostStatement) -> str:
    if statement.status == StatementStatus.ESTIMATE:
        return (
            "Estimate: no payout has been made yet. These are the figures it would have "
            "today, with today's host fee and the refunds so far."
        )
    if statement.status == StatementStatus.NOTHING_TO_PAY:
        return "Nothing to pay: the booking was canceled."
    if statement.status == StatementStatus.PAID and statement.paid_at is not None:
        return f"Payout paid on {_day(statement.paid_at.date())}."
    return f"Payout status: {statement.status}."


def render_pdf(
    receipt: Receipt, statement: HostStatement | None = None, *, compress: bool = True
) -> bytes:
    """The receipt on one A4 page; the host's payout statement after it, when given."""
    currency = receipt.currency
    # Imported here: fpdf2 takes a second to import, a cost only a PDF should pay, not
    # every server start.
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_title(f"Receipt {receipt.number}")
    pdf.set_creator("Roost")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def row(label: str, value: str = "", *, bold: bool = False, size: int = 10) -> None:
        pdf.set_font("helvetica", "B" if bold else "", size)
        pdf.cell(width * 0.7, 7, label, new_x=XPos.RIGHT, new_y=YPos.TOP)
        pdf.cell(width * 0.3, 7, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def text(line: str, *, bold: bool = False) -> None:
        pdf.set_font("helvetica", "B" if bold else "", 10)
        pdf.multi_cell(width, 6, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    row("Roost receipt", receipt.number, bold=True, size=16)
    row("", f"Issued {_day(receipt.issued_on)}")
    pdf.ln(4)
    text("Billed to", bold=True)
    text(printable(receipt.payer_name, NAME_CHARS))
    pdf.ln(2)
    text("Stay", bold=True)
    text(printable(receipt.listing_title, TITLE_CHARS))
    place = ", ".join(
        part
        for part in (
            receipt.address_line1,
            " ".join(p for p in (receipt.postal_code, receipt.city) if p),
            receipt.region,
            receipt.country,
        )
        if part
    )
    text(printable(place, ADDRESS_CHARS))
    nights = receipt.nights
    text(
        f"{_day(receipt.check_in)} to {_day(receipt.check_out)}, "
        f"{nights} night{'s' if nights != 1 else ''}"
    )
    pdf.ln(4)
    for line in receipt.lines:
        label = line.label
        if line.quantity is not None and line.unit_minor is not None:
            label += f" x {_money(line.unit_minor, currency)}"
        row(label, _money(line.amount_minor, currency))
    row("Total", _money(receipt.total_minor, currency), bold=True)
    pdf.ln(2)
    row("Charged", _money(receipt.charged_minor, currency))
    for refund in receipt.refunds:
        label = f"Refund on {_day(refund.refunded_at.date())}"
        if refund.provider_reference:
            label += f" ({printable(refund.provider_reference, REFUND_REFERENCE_CHARS)})"
        row(label, _money(-refund.amount_minor, currency))
    if not receipt.refunds and receipt.refunded_minor:
        row("Refunded", _money(-receipt.refunded_minor, currency))
    row("Net paid", _money(receipt.net_paid_minor, currency), bold=True)
    pdf.ln(4)
    reference = printable(receipt.provider_reference or "-", REFERENCE_CHARS)
    provider = PROVIDER_NAMES.get(receipt.provider, receipt.provider.title())
    text(f"Paid with {provider}, reference {reference}. Status: {receipt.status}.")
    text(f"All amounts in {currency}.")
    if statement is not None:
        pdf.ln(6)
        row("Host payout statement", bold=True, size=12)
        row("Nights", _money(statement.nights_minor, currency))
        if statement.cleaning_fee_minor:
            row("Cleaning fee", _money(statement.cleaning_fee_minor, currency))
        fee = "Host fee"
        if statement.host_fee_percent is not None:
            fee += f" ({_percent(statement.host_fee_percent)})"
        row(fee, _money(-statement.host_fee_minor, currency))
        row("Refunds borne by the host", _money(-statement.refunds_minor, currency))
        label = "Estimated payout" if statement.estimated else "Payout"
        row(label, _money(statement.amount_minor, currency), bold=True)
        pdf.ln(2)
        text(_statement_state(statement))
    return bytes(pdf.output())


def _not_found() -> Response:
    return error_response(404, "NOT_FOUND", "No such receipt.")


async def receipt_pdf(request: Request) -> Response:
    viewer, refusal = await authenticate_request(request)
    if refusal is not None:
        raise refusal  # a token sent and refused: the client should refresh, as for GraphQL
    if viewer.user_id is None:
        return _not_found()
    try:
        payment_id = node_id(request.path_params["payment_id"], "Payment", "paymentId")
    except InvalidInput:
        return _not_found()
    loaders = Loaders(request.app.state.database)
    actor = await loaders.user_by_id.load(viewer.user_id)
    payment = await loaders.payment_by_id.load(payment_id)
    if actor is None or actor.status != UserStatus.ACTIVE or payment is None:
        return _not_found()
    sources = await receipts.sources_of(loaders, payment)
    if not rules.can_see_booking(
        actor, guest_id=sources.booking.guest_id, host_id=sources.listing.host_id
    ):
        return _not_found()
    receipt = receipts.build(sources)
    statement = None
    if rules.can_see_payout(actor, host_id=sources.listing.host_id):
        services = request.app.state.services
        statement = await statements.statement_of(
            loaders,
            payment,
            policy=await services.current_payout_policy(),
            gateways=services.payment_gateways,
        )
    content = await run_in_threadpool(render_pdf, receipt, statement)
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="receipt-{receipt.number}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
