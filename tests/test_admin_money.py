"""Admins move money: a cancellation on anyone's behalf with a refund they choose, and refunds
of a payment; bounded by what was paid and not refunded, audited, and moved once even when
admins race."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from db.database import Database
from db.models import PaymentOperation
from tests.accounts_helpers import error_code
from tests.admin_helpers import audited, notified
from tests.booking_helpers import CANCEL, a_place, book, booked, pay, read
from tests.helpers import FakeClock, gql
from tests.receipt_helpers import an_admin
from tests.stripe_helpers import Stripe, paid_in_browser, stripe_hooked

ADMIN_CANCEL = """
mutation($id: ID!, $refund: MoneyInput!, $reason: String!) {
  adminCancelBooking(id: $id, refund: $refund, reason: $reason) {
    id status canceledBy cancelReason refundAmount { amount }
    payment { status refundedAmount { amount } }
  }
}
"""
REFUND = """
mutation($id: ID!, $amount: MoneyInput!, $reason: String!) {
  refundPayment(id: $id, amount: $amount, reason: $reason) {
    id status amount { amount } refundedAmount { amount }
  }
}
"""


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


async def refunds_in_ledger(database: Database) -> list[tuple[int, str]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(PaymentOperation.amount_minor, PaymentOperation.status)
            .where(PaymentOperation.kind == "REFUND")
            .order_by(PaymentOperation.id)
        )
        return [(amount, status) for amount, status in rows]


async def test_an_admin_cancels_with_the_refund_they_choose_and_both_sides_are_told(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    paid = Decimal(payment["amount"]["amount"])

    async def cancel(refund: dict, reason: str = "Host reported a flood", **as_: object) -> dict:
        variables = {"id": booking["id"], "refund": refund, "reason": reason}
        return await gql(client, ADMIN_CANCEL, variables, headers=as_.get("headers", admin))

    too_much = await cancel(eur(str(paid + Decimal("0.01"))))
    assert error_code(too_much) == "BAD_USER_INPUT"
    assert "refund" in too_much["errors"][0]["extensions"]["fields"]
    assert error_code(await cancel(eur("-1"))) == "BAD_USER_INPUT"
    assert error_code(await cancel({"amount": "10", "currency": "USD"})) == "BAD_USER_INPUT"
    assert error_code(await cancel(eur("10.001"))) == "BAD_USER_INPUT"
    assert error_code(await cancel(eur("10"), reason="  ")) == "BAD_USER_INPUT"
    assert error_code(await cancel(eur("10"), reason="x" * 501)) == "BAD_USER_INPUT"
    for party in (place.as_guest, place.as_host):
        assert error_code(await cancel(eur("10"), headers=party)) == "FORBIDDEN"
    assert (await read(client, booking["id"], place.as_guest) or {})["status"] == "CONFIRMED"

    done = await cancel(eur("50"))
    assert "errors" not in done, done
    canceled = done["data"]["adminCancelBooking"]
    assert canceled["status"] == "CANCELED"
    assert canceled["canceledBy"] == "ADMIN"
    assert canceled["cancelReason"] == "Host reported a flood"
    assert Decimal(canceled["refundAmount"]["amount"]) == 50
    assert canceled["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert Decimal(canceled["payment"]["refundedAmount"]["amount"]) == 50
    assert await refunds_in_ledger(database) == [(5_000, "SUCCEEDED")]
    assert error_code(await cancel(eur("0"))) == "CONFLICT"

    [entry] = await audited(client, admin, "booking.admin_cancel")
    assert entry["subjectId"] == booking["id"]
    assert entry["before"] == {"status": "CONFIRMED"}
    assert entry["after"] == {"status": "CANCELED", "refund_minor": 5_000, "currency": "EUR"}
    assert entry["reason"] == "Host reported a flood"
    for party in (place.as_guest, place.as_host):
        told = await notified(app, client, party)
        assert "BOOKING_CANCELED" in [n["kind"] for n in told]
    # The nights are free again.
    again = await book(client, place, 10, 12)
    assert "errors" not in again, again


async def test_an_unpaid_booking_is_canceled_with_nothing_to_refund(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    variables = {"id": booking["id"], "refund": eur("1"), "reason": "Fraud"}
    assert error_code(await gql(client, ADMIN_CANCEL, variables, headers=admin)) == (
        "BAD_USER_INPUT"
    )
    variables["refund"] = eur("0")
    done = await gql(client, ADMIN_CANCEL, variables, headers=admin)
    assert done["data"]["adminCancelBooking"]["status"] == "CANCELED", done
    assert await refunds_in_ledger(database) == []


async def test_admins_refund_a_payment_up_to_what_is_left_of_it(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    paid = Decimal(payment["amount"]["amount"])

    async def refund(amount: str, headers: dict[str, str] = admin) -> dict:
        variables = {"id": payment["id"], "amount": eur(amount), "reason": "Broken heater"}
        return await gql(client, REFUND, variables, headers=headers)

    assert error_code(await refund("0")) == "BAD_USER_INPUT"
    assert error_code(await refund(str(paid + 1))) == "BAD_USER_INPUT"
    assert error_code(await refund("10", headers=place.as_guest)) == "FORBIDDEN"
    first = await refund("30")
    assert first["data"]["refundPayment"]["status"] == "PARTIALLY_REFUNDED", first
    assert error_code(await refund(str(paid - 29))) == "BAD_USER_INPUT"
    rest = await refund(str(paid - 30))
    assert rest["data"]["refundPayment"]["status"] == "REFUNDED", rest
    assert Decimal(rest["data"]["refundPayment"]["refundedAmount"]["amount"]) == paid
    assert error_code(await refund("1")) == "BAD_USER_INPUT"  # nothing is left of it
    entries = await audited(client, admin, "payment.refund")
    assert [e["after"]["refund_minor"] for e in entries] == [int(paid * 100) - 3_000, 3_000]
    assert all(e["reason"] == "Broken heater" for e in entries)
    # The booking itself is left as it was.
    assert (await read(client, booking["id"], place.as_guest) or {})["status"] == "CONFIRMED"


async def test_a_pending_payment_has_nothing_to_refund(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    start = "mutation($id: ID!) { startPayment(bookingId: $id, provider: TEST) { payment { id } } }"
    started = await gql(client, start, {"id": booking["id"]}, headers=place.as_guest)
    payment_id = started["data"]["startPayment"]["payment"]["id"]
    variables = {"id": payment_id, "amount": eur("1"), "reason": "Why not"}
    assert error_code(await gql(client, REFUND, variables, headers=admin)) == "CONFLICT"


async def test_racing_refunds_and_cancels_move_the_money_once(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    paid = payment["amount"]["amount"]
    refund = {"id": payment["id"], "amount": eur(paid), "reason": "Race"}
    cancel = {"id": booking["id"], "refund": eur(paid), "reason": "Race"}
    bodies = await asyncio.gather(
        *(gql(client, REFUND, refund, headers=admin) for _ in range(3)),
        gql(client, ADMIN_CANCEL, cancel, headers=admin),
        gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_host),
    )
    refunds = await refunds_in_ledger(database)
    # Whatever won, the whole payment went back once, never more.
    assert sum(amount for amount, status in refunds if status == "SUCCEEDED") == int(
        Decimal(paid) * 100
    ), (refunds, bodies)
    assert len(refunds) == 1, bodies
    assert all(error_code(b) in ("CONFLICT", "BAD_USER_INPUT") for b in bodies if "errors" in b)


@pytest.fixture
async def hooked(app: Starlette, database: Database, clock: FakeClock) -> AsyncIterator[Stripe]:
    async with stripe_hooked(app) as stripe:
        yield stripe


@pytest.mark.parametrize("pending", [False, True], ids=["refunded-at-once", "pending-first"])
async def test_admins_racing_to_refund_a_stripe_payment_ask_stripe_once(
    client: httpx.AsyncClient, database: Database, hooked: Stripe, pending: bool
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client, cancellationPolicy="FIRM")
    booking, intent = await paid_in_browser(client, hooked, place)
    paid = await read(client, booking["id"], place.as_guest) or {}
    payment_id, amount = paid["payment"]["id"], paid["payment"]["amount"]["amount"]
    if pending:
        hooked.fake.refunds_pending()
    refund = {"id": payment_id, "amount": eur("25"), "reason": "Noisy street"}
    cancel = {"id": booking["id"], "refund": eur(amount), "reason": "Noisy street"}
    # Stripe tells of the winner's refund (its webhooks, then its answer) only once the other
    # four have their answers, so the race is one on every run: none of them may start after
    # the winner's refund is done (it would then be a later refund, not a racing one), and
    # refund.created says it is done as surely as the answer. Were two refunds asked, neither
    # would be answered before the timeout, and the count at Stripe below would tell.
    answered: list[object] = []
    others_answered = asyncio.Event()

    async def requested(document: str, variables: dict[str, object]) -> dict[str, Any]:
        body = await gql(client, document, variables, headers=admin)
        answered.append(body)
        if len(answered) == 4:
            others_answered.set()
        return body

    async def answer_the_winner_last(method: str, path: str) -> None:
        if method == "POST" and path == "/v1/refunds":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(others_answered.wait(), timeout=10)

    hooked.fake.before_events = answer_the_winner_last
    bodies = await asyncio.gather(
        *(requested(REFUND, refund) for _ in range(4)), requested(ADMIN_CANCEL, cancel)
    )
    hooked.fake.before_events = None
    won = [body for body in bodies if "errors" not in body]
    assert len(won) == 1, bodies
    assert all(error_code(b) == "CONFLICT" for b in bodies if "errors" in b), bodies
    [asked] = hooked.fake.refunds.values()  # one refund at Stripe, of what the winner chose
    expected = 2_500 if "refundPayment" in won[0]["data"] else int(Decimal(amount) * 100)
    assert asked["amount"] == expected
    assert asked["payment_intent"] == intent["id"]
    if pending:
        await hooked.fake.finish_refund(asked["id"])
    assert await refunds_in_ledger(database) == [(expected, "SUCCEEDED")]
