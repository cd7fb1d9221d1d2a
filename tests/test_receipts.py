"""Receipts over HTTP: the itemized receipt of a payment (exact to the minor unit in USD, JPY and
KWD), its refunds, its PDF and who may read it; and a guest's payment history."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import httpx
import pytest
from starlette.applications import Starlette
from strawberry.relay import from_base64

from app.receipts import NAME_CHARS, TITLE_CHARS, printable, render_pdf
from db.database import Database
from services.pricing import FeePolicy
from services.receipts import Line, LineKind, Receipt, _night_lines
from tests.accounts_helpers import bearer, error_code, register
from tests.booking_helpers import (
    CANCEL,
    CONFIRM_PAYMENT,
    START_PAYMENT,
    Place,
    a_place,
    booked,
    day,
    pay,
)
from tests.helpers import START, FakeClock, StatementCounter, gql
from tests.listing_helpers import UPDATE
from tests.receipt_helpers import an_admin, pdf_text

MONEY = "{ amount currency formatted }"
RECEIPT_FIELDS = f"""
  number issuedOn payerName listingTitle address {{ line1 city country }}
  checkIn checkOut nights currency
  lines {{ kind label quantity unitAmount {MONEY} amount {MONEY} }}
  total {MONEY} charged {MONEY} refunds {{ refundedAt amount {MONEY} providerReference }}
  refunded {MONEY} netPaid {MONEY} provider providerReference status pdfUrl
"""
RECEIPT = f"""
query($id: ID!) {{
  node(id: $id) {{ ... on Payment {{ id createdAt receipt {{ {RECEIPT_FIELDS} }} }} }}
}}
"""
BOOKING_RECEIPT = f"""
query($id: ID!) {{ booking(id: $id) {{ payment {{ receipt {{ {RECEIPT_FIELDS} }} }} }} }}
"""
PRICES = """
mutation($id: ID!, $f: Date!, $t: Date!, $amount: Decimal) {
  setNightPrices(listingId: $id, from: $f, to: $t, amount: $amount)
}
"""
MY_PAYMENTS = """
query($first: Int, $after: String) {
  myPayments(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id status amount { amount currency } } }
  }
}
"""
MY_RECEIPTS = f"""
query($first: Int) {{
  myPayments(first: $first) {{ edges {{ node {{ id receipt {{ {RECEIPT_FIELDS} }} }} }} }}
}}
"""


@pytest.fixture
def taxed(app: Starlette) -> Iterator[None]:
    """A 14% guest service fee and Portugal's 6.5% occupancy tax (the places are in Lisbon)."""
    services = app.state.services
    fees = FeePolicy(Decimal(14), Decimal(0), {"PT": Decimal("6.5")})
    app.state.services = replace(services, booking_rules=replace(services.booking_rules, fees=fees))
    yield
    app.state.services = replace(app.state.services, booking_rules=services.booking_rules)


def money(amount: str, currency: str, formatted: str) -> dict:
    return {"amount": amount, "currency": currency, "formatted": formatted}


async def receipt_of(client: httpx.AsyncClient, payment_id: str, headers: dict) -> dict:
    body = await gql(client, RECEIPT, {"id": payment_id}, headers=headers)
    assert "errors" not in body, body
    node = body["data"]["node"]
    year = datetime.fromisoformat(node["createdAt"]).year
    number = int(from_base64(payment_id)[1])
    assert node["receipt"]["number"] == f"R-{year}-{number:08d}"
    return node["receipt"]


# The receipt, line by line.


async def test_a_receipt_itemizes_the_stored_price_exactly(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, taxed: None
) -> None:
    place = await a_place(
        client,
        nightlyPrice={"amount": "100.25", "currency": "USD"},
        cleaningFee={"amount": "30", "currency": "USD"},
    )
    variables = {"id": place.listing_id, "f": day(11), "t": day(12), "amount": "150"}
    assert "errors" not in await gql(client, PRICES, variables, headers=place.as_host)
    booking = await booked(client, place, 10, 13)
    payment = await pay(client, place, booking["id"])
    # A later price is the listing's, not the receipt's.
    change = {"nightlyPrice": {"amount": "500", "currency": "USD"}}
    assert "errors" not in await gql(
        client, UPDATE, {"id": place.listing_id, "input": change}, headers=place.as_host
    )

    receipt = await receipt_of(client, payment["id"], place.as_guest)
    # Nights 100.25 + 150 + 100.25 and 30 cleaning = 380.50; 14% = 53.27; 6.5% = 24.7325.
    assert receipt["lines"] == [
        {
            "kind": "NIGHTS",
            "label": "2 nights",
            "quantity": 2,
            "unitAmount": money("100.25", "USD", "$100.25"),
            "amount": money("200.50", "USD", "$200.50"),
        },
        {
            "kind": "NIGHTS",
            "label": "1 night",
            "quantity": 1,
            "unitAmount": money("150.00", "USD", "$150.00"),
            "amount": money("150.00", "USD", "$150.00"),
        },
        {
            "kind": "CLEANING_FEE",
            "label": "Cleaning fee",
            "quantity": None,
            "unitAmount": None,
            "amount": money("30.00", "USD", "$30.00"),
        },
        {
            "kind": "SERVICE_FEE",
            "label": "Service fee",
            "quantity": None,
            "unitAmount": None,
            "amount": money("53.27", "USD", "$53.27"),
        },
        {
            "kind": "TAXES",
            "label": "Occupancy taxes",
            "quantity": None,
            "unitAmount": None,
            "amount": money("24.73", "USD", "$24.73"),
        },
    ]
    assert (
        receipt["total"]
        == receipt["charged"]
        == receipt["netPaid"]
        == money("458.50", "USD", "$458.50")
    )
    assert receipt["refunds"] == [] and receipt["refunded"]["amount"] == "0.00"
    assert receipt["currency"] == "USD" and receipt["nights"] == 3
    assert (receipt["checkIn"], receipt["checkOut"]) == (day(10), day(13))
    assert receipt["issuedOn"] == START.date().isoformat()  # when the money was taken
    assert receipt["payerName"] == "Ana Silva"
    assert receipt["listingTitle"] == "Alfama loft with a view"
    assert receipt["address"] == {"line1": "Rua dos Remédios 12", "city": "Lisboa", "country": "PT"}
    assert (receipt["provider"], receipt["status"]) == ("TEST", "SUCCEEDED")
    assert receipt["providerReference"]
    assert receipt["pdfUrl"] == f"/receipts/{payment['id']}"


@pytest.mark.parametrize(
    ("currency", "nightly", "cleaning", "expected"),
    [
        # 2 x 12000 + 3000 = 27000; 14% = 3780; 6.5% = 1755.
        ("JPY", "12000", "3000", ["24000", "3000", "3780", "1755", "32535", "¥32,535"]),
        # 2 x 45.125 + 5.500 = 95.750; 14% = 13.405; 6.5% = 6.22375, half up to 6.224.
        ("KWD", "45.125", "5.5", ["90.250", "5.500", "13.405", "6.224", "115.379", "KWD"]),
    ],
)
async def test_receipts_keep_the_currencys_own_decimals(
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    taxed: None,
    currency: str,
    nightly: str,
    cleaning: str,
    expected: list[str],
) -> None:
    place = await a_place(
        client,
        nightlyPrice={"amount": nightly, "currency": currency},
        cleaningFee={"amount": cleaning, "currency": currency},
    )
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    receipt = await receipt_of(client, payment["id"], place.as_guest)
    nights, cleaning_fee, service, taxes, total, shown = expected
    assert [line["amount"]["amount"] for line in receipt["lines"]] == [
        nights, cleaning_fee, service, taxes,
    ]  # fmt: skip
    assert {line["amount"]["currency"] for line in receipt["lines"]} == {currency}
    assert receipt["total"]["amount"] == receipt["netPaid"]["amount"] == total
    assert shown in receipt["total"]["formatted"]


async def test_a_partial_refund_is_a_line_of_its_own_and_leaves_the_net(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, taxed: None
) -> None:
    place = await a_place(
        client,
        nightlyPrice={"amount": "45.125", "currency": "KWD"},
        cleaningFee={"amount": "5.5", "currency": "KWD"},
        cancellationPolicy="MODERATE",
    )
    booking = await booked(client, place, 3, 5)
    payment = await pay(client, place, booking["id"])
    clock.advance(hours=2)
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    assert body["data"]["cancelBooking"]["payment"]["status"] == "PARTIALLY_REFUNDED"

    receipt = await receipt_of(client, payment["id"], place.as_guest)
    # Under 5 days before check-in, MODERATE gives back half the nights: 45.125 of 115.379.
    assert receipt["total"]["amount"] == receipt["charged"]["amount"] == "115.379"
    [refund] = receipt["refunds"]
    assert refund["amount"] == money("45.125", "KWD", "KWD45.125")
    assert datetime.fromisoformat(refund["refundedAt"]) == clock.now
    assert refund["providerReference"]
    assert receipt["refunded"]["amount"] == "45.125"
    assert receipt["netPaid"] == money("70.254", "KWD", "KWD70.254")
    assert receipt["status"] == "PARTIALLY_REFUNDED"
    assert receipt["issuedOn"] == START.date().isoformat()  # the charge's day, not the refund's

    response = await client.get(receipt["pdfUrl"], headers=place.as_guest)
    text = pdf_text(response.content)
    for shown in (b"KWD 115.379", b"-KWD 45.125", b"KWD 70.254"):
        assert shown in text


async def test_an_unpaid_payment_has_a_receipt_with_nothing_paid(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await gql(
        client, START_PAYMENT, {"id": booking["id"], "provider": "TEST"}, headers=place.as_guest
    )
    payment_id = started["data"]["startPayment"]["payment"]["id"]
    receipt = await receipt_of(client, payment_id, place.as_guest)
    assert receipt["status"] == "PENDING"
    assert (receipt["charged"]["amount"], receipt["netPaid"]["amount"]) == ("262.20", "0.00")


async def test_the_host_reads_the_receipt_as_their_statement_and_a_stranger_reads_nothing(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    body = await gql(client, BOOKING_RECEIPT, {"id": booking["id"]}, headers=place.as_host)
    assert body["data"]["booking"]["payment"]["receipt"]["total"]["amount"] == "262.20"
    stranger = bearer((await register(client))["accessToken"])
    body = await gql(client, BOOKING_RECEIPT, {"id": booking["id"]}, headers=stranger)
    assert body["data"]["booking"] is None


# The PDF.


async def test_the_pdf_is_served_to_the_payer_the_host_and_admins_only(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    receipt = await receipt_of(client, payment["id"], place.as_guest)
    url = receipt["pdfUrl"]

    admin = await an_admin(client, database)
    for headers in (place.as_guest, place.as_host, admin):
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"] == (
            f'inline; filename="receipt-{receipt["number"]}.pdf"'
        )
        assert response.headers["cache-control"] == "private, no-store"
        assert response.content.startswith(b"%PDF-")
        text = pdf_text(response.content)
        assert receipt["number"].encode() in text
        assert b"EUR 262.20" in text and b"Ana Silva" in text

    stranger = bearer((await register(client))["accessToken"])
    other_booking = await booked(client, await a_place(client), 10, 12)
    not_found = [
        (url, stranger),  # another guest
        (url, {}),  # anonymous
        ("/receipts/nonsense", place.as_guest),
        (f"/receipts/{other_booking['id']}", place.as_guest),  # a Booking's id, not a Payment's
        ("/receipts/UGF5bWVudDo5OTk5OTk5OTk=", place.as_guest),  # Payment:999999999
        ("/receipts/UGF5bWVudDo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk=", place.as_guest),  # no bigint
    ]
    bodies = set()
    for path, headers in not_found:
        response = await client.get(path, headers=headers)
        assert response.status_code == 404, (path, response.text)
        bodies.add(response.text)
    assert len(bodies) == 1  # the same answer, whether or not the payment exists

    refused = await client.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401  # a token sent and refused: refresh and try again


async def test_text_beyond_the_pdf_fonts_is_printed_safely_and_bounded(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, title="東京の家 🏯 “Sakura” – Ōmotesandō")
    guest = await register(client, first_name="Zoë 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢")
    place = Place(place.listing_id, place.host, guest["accessToken"])
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    response = await client.get(f"/receipts/{payment['id']}", headers=place.as_guest)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    assert b"Zo\\353 ? Unicode Silva" in text or "Zoë ? Unicode Silva".encode("latin-1") in text
    assert b'???? ? "Sakura" - Omotesando' in text

    assert printable("Zoë\n\tok", 20) == "Zoë  ok"
    assert printable("a" * 500, 80) == "a" * 79 + "..."
    assert printable("€ and ₹ and 👍🏽", 80) == "EUR and ? and ??"


def test_a_receipt_renders_whatever_its_text() -> None:
    """Straight to the renderer: every field at once, long and outside Latin-1."""
    hostile = "𝕏" * 300 + "\u202e\x00" + "🏳️‍🌈" * 50
    receipt = Receipt(
        number="R-2027-00000001",
        payment_id=1,
        booking_id=1,
        issued_on=START.date(),
        payer_name=hostile,
        listing_title=hostile,
        address_line1=hostile,
        city=hostile,
        region=hostile,
        postal_code=hostile,
        country="JP",
        check_in=START.date(),
        check_out=START.date().replace(day=20),
        currency="JPY",
        lines=(Line(LineKind.NIGHTS, "9 nights", 9 * 12_000, quantity=9, unit_minor=12_000),),
        total_minor=108_000,
        charged_minor=108_000,
        refunds=(),
        refunded_minor=0,
        net_paid_minor=108_000,
        provider="TEST",
        provider_reference=hostile,
        status="SUCCEEDED",
    )
    pdf = render_pdf(receipt, compress=False)
    assert pdf.startswith(b"%PDF-") and b"JPY 108,000" in pdf
    assert pdf.count(b"/Type /Page\n") == 1

    # Marks found nowhere else in a PDF, counted wherever the lines wrap.
    long = replace(receipt, payer_name="~" * 500, listing_title="^" * 500)
    text = render_pdf(long, compress=False)
    assert (text.count(b"~"), text.count(b"^")) == (NAME_CHARS - 1, TITLE_CHARS - 1)


def test_nights_at_many_prices_are_one_line_of_their_sum() -> None:
    assert _night_lines([100, 120, 100]) == [
        Line(LineKind.NIGHTS, "2 nights", 200, quantity=2, unit_minor=100),
        Line(LineKind.NIGHTS, "1 night", 120, quantity=1, unit_minor=120),
    ]
    assert _night_lines(list(range(100, 106))) == [
        Line(LineKind.NIGHTS, "6 nights", 615, quantity=6)
    ]


# A guest's payment history.


async def test_my_payments_lists_the_guests_own_payments_newest_first_a_page_at_a_time(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    first = await booked(client, place, 10, 11)
    declined = await gql(
        client, START_PAYMENT, {"id": first["id"], "provider": "TEST"}, headers=place.as_guest
    )
    declined_id = declined["data"]["startPayment"]["payment"]["id"]
    await gql(
        client, CONFIRM_PAYMENT, {"id": declined_id, "succeed": False}, headers=place.as_guest
    )
    ids = [declined_id, (await pay(client, place, first["id"]))["id"]]
    for start in (12, 14):
        ids.append(
            (await pay(client, place, (await booked(client, place, start, start + 1))["id"]))["id"]
        )
    other = await a_place(client)  # another guest's payment is not in the list
    await pay(client, other, (await booked(client, other, 10, 11))["id"])

    seen, after = [], None
    while True:
        body = await gql(client, MY_PAYMENTS, {"first": 3, "after": after}, headers=place.as_guest)
        page = body["data"]["myPayments"]
        assert page["totalCount"] == 4
        seen += [(edge["node"]["id"], edge["node"]["status"]) for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [payment_id for payment_id, _ in seen] == ids[::-1]
    assert [status for _, status in seen] == ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED"]

    mine = await gql(client, MY_PAYMENTS, {}, headers=other.as_guest)
    assert len(mine["data"]["myPayments"]["edges"]) == 1
    host = await gql(client, MY_PAYMENTS, {}, headers=place.as_host)
    assert host["data"]["myPayments"]["edges"] == []  # a host's listings are not their payments
    for bad in ({"first": 101}, {"first": 0}, {"after": "nonsense"}):
        assert error_code(await gql(client, MY_PAYMENTS, bad, headers=place.as_guest)) == (
            "BAD_USER_INPUT"
        )
    assert error_code(await gql(client, MY_PAYMENTS, {})) == "UNAUTHENTICATED"


async def test_a_page_of_receipts_costs_the_same_statements_whatever_its_size(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    guest = None
    for _ in range(3):  # payments on three listings of three hosts
        place = await a_place(client)
        guest = guest or place.guest
        place = replace(place, guest=guest)
        for start in range(1, 8, 2):
            booking = await booked(client, place, start, start + 1)
            await pay(client, place, booking["id"])
            if start == 1:  # one refunded each
                await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    assert guest is not None
    counts = {}
    for size in (2, 12):
        with StatementCounter(database) as counter:
            body = await gql(client, MY_RECEIPTS, {"first": size}, headers=bearer(guest))
        assert "errors" not in body, body
        edges = body["data"]["myPayments"]["edges"]
        assert len(edges) == size and all(e["node"]["receipt"] for e in edges)
        counts[size] = counter.count
    # The viewer, the page; then one each for the bookings, the ledger and the listings (the
    # payer was read as the viewer).
    assert counts[2] == counts[12] == 5, counts
