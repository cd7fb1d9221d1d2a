"""The host's payout statement on a receipt, over HTTP: an estimate while no payout exists,
exact to the minor unit and equal to the payout the worker then makes; the payout's own figures
and state once it exists; nothing to pay for a canceled booking. The host and admins read it
(in GraphQL and in the receipt's PDF); the guest never does."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import update
from starlette.applications import Starlette
from strawberry.relay import from_base64

from app.receipts import render_pdf
from db.database import Database
from db.models import Payment
from db.states import PaymentStatus
from services.receipts import Line, LineKind, Receipt
from services.statements import HostStatement, StatementStatus
from tests.accounts_helpers import bearer, register
from tests.booking_helpers import (
    CANCEL,
    CONFIRM_PAYMENT,
    DECLINE,
    START_PAYMENT,
    a_place,
    booked,
    day,
    pay,
)
from tests.helpers import START, FakeClock, StatementCounter, committed, gql
from tests.payout_helpers import payout_stripe, payouts_in, ready_account, run_worker
from tests.receipt_helpers import an_admin, pdf_text
from tests.stripe_helpers import Stripe

STATEMENT_FIELDS = """
  status estimated currency nightsSubtotal { amount } cleaningFee { amount }
  hostFee { amount } hostFeePercent refunds { amount } amount { amount currency formatted }
  earnedOn paidAt payout { id status amount { amount } }
"""
BOOKING_STATEMENT = f"""
query($id: ID!) {{
  booking(id: $id) {{
    payment {{ id receipt {{ number pdfUrl hostStatement {{ {STATEMENT_FIELDS} }} }} }}
  }}
}}
"""
PAYMENT_STATEMENT = f"""
query($id: ID!) {{
  node(id: $id) {{ ... on Payment {{ receipt {{ hostStatement {{ {STATEMENT_FIELDS} }} }} }} }}
}}
"""
RESERVATION_STATEMENTS = """
query($first: Int) {
  hostReservations(first: $first) {
    edges { node { payment { receipt { number hostStatement {
      status amount { amount } hostFee { amount } payout { id status }
    } } } } }
  }
}
"""


@pytest.fixture
async def stripe(app: Starlette, database: Database, clock: FakeClock) -> AsyncIterator[Stripe]:
    async with payout_stripe(app, clock) as stripe:
        yield stripe


@pytest.fixture
def host_fee(app: Starlette) -> Iterator[None]:
    """Restores the host fee a test changes (``set_host_fee``)."""
    services = app.state.services
    yield None
    app.state.services = replace(app.state.services, payout_policy=services.payout_policy)


def set_host_fee(app: Starlette, percent: str) -> None:
    services = app.state.services
    policy = replace(services.payout_policy, host_fee_percent=Decimal(percent))
    app.state.services = replace(services, payout_policy=policy)


async def statement_of(
    client: httpx.AsyncClient, booking_id: str, headers: dict[str, str]
) -> dict | None:
    """The host statement on the receipt of the booking's payment, as ``headers`` read it."""
    body = await gql(client, BOOKING_STATEMENT, {"id": booking_id}, headers=headers)
    assert "errors" not in body, body
    receipt = body["data"]["booking"]["payment"]["receipt"]
    assert receipt is not None
    return receipt["hostStatement"]


def figures(statement: dict) -> tuple[str, ...]:
    """Nights, cleaning, host fee, refunds, payout."""
    return tuple(
        statement[name]["amount"]
        for name in ("nightsSubtotal", "cleaningFee", "hostFee", "refunds", "amount")
    )


async def pdf_of(client: httpx.AsyncClient, payment_id: str, headers: dict[str, str]) -> bytes:
    response = await client.get(f"/receipts/{payment_id}", headers=headers)
    assert response.status_code == 200, response.text
    return pdf_text(response.content)


async def test_the_host_reads_an_estimate_then_the_payout_and_the_guest_never_reads_it(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    stripe: Stripe,
    host_fee: None,
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    booking = await booked(client, place, 10, 12)  # 2 x 100.00 + 30.00 cleaning, 262.20 paid
    payment = await pay(client, place, booking["id"])
    admin = await an_admin(client, database)

    estimate = await statement_of(client, booking["id"], place.as_host)
    assert estimate == {
        "status": "ESTIMATE",
        "estimated": True,
        "currency": "EUR",
        "nightsSubtotal": {"amount": "200.00"},
        "cleaningFee": {"amount": "30.00"},
        "hostFee": {"amount": "6.90"},  # 3% of 230.00
        "hostFeePercent": "3",
        "refunds": {"amount": "0.00"},
        "amount": {"amount": "223.10", "currency": "EUR", "formatted": "€223.10"},
        "earnedOn": day(12),
        "paidAt": None,
        "payout": None,
    }
    assert await statement_of(client, booking["id"], admin) == estimate
    assert await statement_of(client, booking["id"], place.as_guest) is None  # no host fee
    stranger = bearer((await register(client))["accessToken"])
    body = await gql(client, BOOKING_STATEMENT, {"id": booking["id"]}, headers=stranger)
    assert body["data"]["booking"] is None
    body = await gql(client, PAYMENT_STATEMENT, {"id": payment["id"]}, headers=stranger)
    assert body["data"]["node"] is None

    for headers in (place.as_host, admin):
        shown = await pdf_of(client, payment["id"], headers)
        for part in (b"Host payout statement", b"Host fee \\(3%\\)", b"-EUR 6.90", b"EUR 223.10"):
            assert part in shown, part
        assert b"Estimated payout" in shown and b"Estimate: no payout" in shown
    guests = await pdf_of(client, payment["id"], place.as_guest)
    assert b"EUR 262.20" in guests
    for part in (b"Host payout", b"Host fee", b"223.10", b"6.90"):
        assert part not in guests, part

    clock.advance(days=12)  # an hour past check-out
    await run_worker(app)  # completed; the payout is due a day later
    assert await statement_of(client, booking["id"], place.as_host) == estimate
    clock.advance(days=1)
    await run_worker(app)  # the payout made and sent
    [transfer] = stripe.fake.transfers.values()
    assert transfer["amount"] == 22_310

    paid = await statement_of(client, booking["id"], place.as_host)
    assert paid is not None
    assert figures(paid) == figures(estimate)
    assert (paid["status"], paid["estimated"], paid["hostFeePercent"]) == ("PAID", False, "3")
    assert paid["paidAt"] is not None
    assert paid["payout"]["status"] == "PAID"
    assert paid["payout"]["amount"] == {"amount": "223.10"}
    assert await statement_of(client, booking["id"], admin) == paid
    assert await statement_of(client, booking["id"], place.as_guest) is None
    shown = await pdf_of(client, payment["id"], place.as_host)
    assert b"Payout paid on" in shown and b"EUR 223.10" in shown
    assert b"Estimate" not in shown
    assert b"Host payout" not in await pdf_of(client, payment["id"], place.as_guest)

    # A new rate is today's estimate; a payout made at the old one keeps its figures.
    set_host_fee(app, "5")
    paid_before = await statement_of(client, booking["id"], place.as_host)
    assert paid_before is not None
    assert figures(paid_before) == figures(paid) and paid_before["hostFeePercent"] is None
    later = await booked(client, place, 20, 22)
    await pay(client, place, later["id"])
    estimate = await statement_of(client, later["id"], place.as_host)
    assert estimate is not None
    assert (estimate["hostFee"], estimate["hostFeePercent"], estimate["amount"]["amount"]) == (
        {"amount": "11.50"}, "5", "218.50",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("currency", "nightly", "cleaning", "refunded", "expected"),
    [
        # 2 x 12,345 + 3,000 = 27,690 yen: the fee is 3% = 830.7 -> 831; 1,000 given back.
        ("JPY", "12345", "3000", 1_000, ("24690", "3000", "831", "1000", "25859")),
        # 2 x 30.010 + 5.000 = 65.020 dinars: 3% = 1.9506 -> 1.951; 5.005 given back; 58.064
        # is paid as 58.060 (Stripe moves tens of fils), the 4 fils join the fee.
        ("KWD", "30.010", "5.000", 5_005, ("60.020", "5.000", "1.955", "5.005", "58.060")),
    ],
)
async def test_the_estimate_is_the_payout_the_worker_makes_to_the_minor_unit(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    stripe: Stripe,
    currency: str,
    nightly: str,
    cleaning: str,
    refunded: int,
    expected: tuple[str, ...],
) -> None:
    place = await a_place(
        client,
        nightlyPrice={"amount": nightly, "currency": currency},
        cleaningFee={"amount": cleaning, "currency": currency},
    )
    await ready_account(client, stripe, place)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    async with committed(database) as session:  # part given back, as a refund records it
        await session.execute(
            update(Payment)
            .where(Payment.id == int(from_base64(payment["id"])[1]))
            .values(refunded_minor=refunded, status=PaymentStatus.PARTIALLY_REFUNDED)
        )

    estimate = await statement_of(client, booking["id"], place.as_host)
    assert estimate is not None
    assert (estimate["status"], estimate["currency"]) == ("ESTIMATE", currency)
    assert figures(estimate) == expected
    assert estimate["amount"]["currency"] == currency
    shown = await pdf_of(client, payment["id"], place.as_host)
    assert f"{currency} {expected[-1]}".replace("25859", "25,859").encode() in shown

    clock.advance(days=13)
    await run_worker(app)  # completed
    await run_worker(app)  # a day after check-out: paid
    [payout] = await payouts_in(database)
    [transfer] = stripe.fake.transfers.values()
    assert payout.amount_minor == transfer["amount"]
    paid = await statement_of(client, booking["id"], place.as_host)
    assert paid is not None and paid["status"] == "PAID"
    assert figures(paid) == figures(estimate) == expected
    assert (payout.host_fee_minor, payout.refunds_minor) == (
        int(Decimal(expected[2]).scaleb(3 if currency == "KWD" else 0)),
        refunded,
    )


async def test_a_canceled_booking_has_nothing_to_pay_and_is_never_paid_out(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_host)
    assert body["data"]["cancelBooking"]["payment"]["status"] == "REFUNDED"  # all of 262.20

    nothing = await statement_of(client, booking["id"], place.as_host)
    assert nothing is not None
    assert (nothing["status"], nothing["estimated"], nothing["hostFeePercent"]) == (
        "NOTHING_TO_PAY", False, None,
    )  # fmt: skip
    assert figures(nothing) == ("200.00", "30.00", "0.00", "262.20", "0.00")
    assert nothing["payout"] is None
    shown = await pdf_of(client, payment["id"], place.as_host)
    assert b"Nothing to pay: the booking was canceled." in shown

    clock.advance(days=14)
    await run_worker(app)
    await run_worker(app)
    assert await payouts_in(database) == []  # as the statement said
    assert await statement_of(client, booking["id"], place.as_host) == nothing


async def test_a_guest_cancellation_pays_the_host_the_share_the_guest_kept_paying(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, cancellationPolicy="FIRM")
    booking = await booked(client, place, 10, 12)  # 200 nights + 30 cleaning + 32.20 fees
    await pay(client, place, booking["id"])
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    assert body["data"]["cancelBooking"]["refundAmount"]["amount"] == "100.00"  # half the nights

    # The host keeps the policy's share: 230 less the 3% fee (6.90) less the 100 refunded.
    estimate = await statement_of(client, booking["id"], place.as_host)
    assert estimate is not None and estimate["status"] == "ESTIMATE"
    assert figures(estimate) == ("200.00", "30.00", "6.90", "100.00", "123.10")
    assert estimate["earnedOn"] == day(10)

    clock.advance(days=10)  # the stay would have begun; a day more before the host is paid
    await run_worker(app)
    assert await payouts_in(database) == []
    clock.advance(days=2)  # past check-in (at the listing's check-in time) and a day
    await run_worker(app)
    await run_worker(app)
    [payout] = await payouts_in(database)
    assert (payout.amount_minor, payout.refunds_minor, payout.earned_on.isoformat()) == (
        12_310, 10_000, day(10)
    )  # fmt: skip
    made = await statement_of(client, booking["id"], place.as_host)
    assert made is not None and figures(made) == figures(estimate)


async def test_a_declined_request_took_nothing_and_pays_nothing(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    assert (await pay(client, place, booking["id"]))["status"] == "AUTHORIZED"
    waiting = await statement_of(client, booking["id"], place.as_host)
    assert waiting is not None and waiting["status"] == "ESTIMATE"
    assert figures(waiting) == ("200.00", "30.00", "6.90", "0.00", "223.10")  # if accepted

    body = await gql(client, DECLINE, {"id": booking["id"]}, headers=place.as_host)
    assert body["data"]["declineBooking"]["payment"]["status"] == "CANCELED"  # released
    declined = await statement_of(client, booking["id"], place.as_host)
    assert declined is not None and declined["status"] == "NOTHING_TO_PAY"
    assert figures(declined) == ("200.00", "30.00", "0.00", "0.00", "0.00")


async def test_a_failed_try_made_again_has_no_statement_of_its_own(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await gql(
        client, START_PAYMENT, {"id": booking["id"], "provider": "TEST"}, headers=place.as_guest
    )
    failed_id = started["data"]["startPayment"]["payment"]["id"]
    await gql(client, CONFIRM_PAYMENT, {"id": failed_id, "succeed": False}, headers=place.as_guest)

    async def on_payment(payment_id: str) -> dict | None:
        body = await gql(client, PAYMENT_STATEMENT, {"id": payment_id}, headers=place.as_host)
        assert "errors" not in body, body
        return body["data"]["node"]["receipt"]["hostStatement"]

    # The booking still holds and its guest may pay again: the host's estimate stands.
    waiting = await on_payment(failed_id)
    assert waiting is not None
    assert (waiting["status"], waiting["amount"]["amount"]) == ("ESTIMATE", "223.10")

    paid = await pay(client, place, booking["id"])
    assert await on_payment(failed_id) is None
    statement = await on_payment(paid["id"])
    assert statement is not None and statement["amount"]["amount"] == "223.10"


async def test_a_page_of_host_statements_costs_the_same_statements_whatever_its_size(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    for start in range(1, 15):
        booking = await booked(client, place, start, start + 1)
        await pay(client, place, booking["id"])
    clock.advance(days=4)
    await run_worker(app)  # the first three stays completed
    clock.advance(days=1)
    await run_worker(app)  # and their payouts made (PENDING: the host has no account)
    assert len(await payouts_in(database)) == 3

    counts = {}
    for size in (2, 12):
        with StatementCounter(database) as counter:
            body = await gql(client, RESERVATION_STATEMENTS, {"first": size}, headers=place.as_host)
        assert "errors" not in body, body
        statements = [
            edge["node"]["payment"]["receipt"]["hostStatement"]
            for edge in body["data"]["hostReservations"]["edges"]
        ]
        assert [s["status"] for s in statements] == (["PENDING"] * 3 + ["ESTIMATE"] * 9)[:size]
        assert statements[0]["payout"]["status"] == "PENDING"
        counts[size] = counter.count
    # The viewer, the page; then one each for the payments, the bookings, the listings, the
    # ledger, the payers and the payouts.
    assert counts[2] == counts[12] == 8, counts


def test_the_pdf_says_where_each_payout_is() -> None:
    """Straight to the renderer: a payout in each state, and a fee at a rate no longer today's."""
    receipt = Receipt(
        number="R-2027-00000001",
        payment_id=1,
        booking_id=1,
        issued_on=START.date(),
        payer_name="Ana Silva",
        listing_title="Alfama loft",
        address_line1=None,
        city="Lisboa",
        region=None,
        postal_code=None,
        country="PT",
        check_in=START.date(),
        check_out=START.date().replace(day=13),
        currency="KWD",
        lines=(Line(LineKind.NIGHTS, "2 nights", 60_020, quantity=2, unit_minor=30_010),),
        total_minor=74_123,
        charged_minor=74_123,
        refunds=(),
        refunded_minor=0,
        net_paid_minor=74_123,
        provider="TEST",
        provider_reference=None,
        status="SUCCEEDED",
    )
    statement = HostStatement(
        booking_id=1,
        currency="KWD",
        nights_minor=60_020,
        cleaning_fee_minor=5_000,
        host_fee_minor=1_960,
        host_fee_percent=None,
        refunds_minor=0,
        amount_minor=63_060,
        status=StatementStatus.REVERSED,
        earned_on=START.date(),
        payout=None,
    )
    text = render_pdf(receipt, statement, compress=False)
    assert b"Host fee" in text and b"Host fee \\(" not in text  # no rate it was not taken at
    assert b"-KWD 1.960" in text and b"KWD 63.060" in text
    assert b"Payout status: REVERSED." in text
    half = replace(statement, host_fee_percent=Decimal("2.5"), status=StatementStatus.SENDING)
    text = render_pdf(receipt, half, compress=False)
    assert b"Host fee \\(2.5%\\)" in text and b"Payout status: SENDING." in text
    assert b"Host payout" not in render_pdf(receipt, compress=False)
