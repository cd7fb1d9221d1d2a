"""PayPal's webhooks through HTTP: the fake of PayPal's API (tests/fakes/paypal_api.py) signs
and posts its events to POST /webhooks/paypal, as PayPal does; the app has PayPal verify each
delivery (verify-webhook-signature) and applies it once."""

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.wiring import build_worker
from db.database import Database
from db.models import OutboxEvent, PaymentOperation, ProviderEvent
from tests.booking_helpers import CANCEL, DECLINE, Place, a_place, booked, read
from tests.fakes.paypal_api import Delivery
from tests.helpers import FakeClock, gql
from tests.paypal_helpers import WEBHOOK_ID, PayPal, approve, paypal_hooked, start


@pytest.fixture
async def paypal(app: Starlette, database: Database, clock: FakeClock) -> AsyncIterator[PayPal]:
    async with paypal_hooked(app) as paypal:
        yield paypal


async def count(database: Database, model: type, *where: object) -> int:
    async with database.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def ledger(database: Database) -> list[tuple[str, str]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(PaymentOperation.kind, PaymentOperation.status).order_by(PaymentOperation.id)
        )
    return [tuple(row) for row in rows]


def kinds(paypal: PayPal) -> list[str]:
    return [kind for kind, _, _, _ in paypal.fake.moves]


async def paid(client: httpx.AsyncClient, paypal: PayPal, place: Place) -> tuple[dict, dict]:
    booking = await booked(client, place, 10, 12)  # 262.20 EUR
    started = await start(client, place, booking["id"])
    await approve(started)
    return booking, paypal.order(started)


async def test_an_order_approved_in_the_browser_and_its_webhooks_confirm_the_booking(
    client: httpx.AsyncClient, database: Database, paypal: PayPal
) -> None:
    place = await a_place(client)
    booking, order = await paid(client, paypal, place)
    # No worker ran: the approval's webhook led to the capture, whose webhook came meanwhile.
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert [(kind, amount, currency) for kind, _, amount, currency in paypal.fake.moves] == [
        ("capture", Decimal("262.20"), "EUR")
    ]
    # (The capture's answered first: it came while the approval's delivery was being handled.)
    assert sorted(paypal.fake.answers) == [
        ("CHECKOUT.ORDER.APPROVED", 200), ("PAYMENT.CAPTURE.COMPLETED", 200)
    ]  # fmt: skip
    # Each delivery was verified by PayPal.
    verified = paypal.fake.requests.count(("POST", "/v1/notifications/verify-webhook-signature"))
    assert verified == 2
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "SUCCEEDED")]
    assert await count(database, ProviderEvent, ProviderEvent.provider == "PAYPAL") == 2
    assert order["status"] == "COMPLETED"


async def test_a_request_approved_is_authorized_and_a_decline_voids_it(
    client: httpx.AsyncClient, database: Database, paypal: PayPal
) -> None:
    place = await a_place(client, instantBook=False)
    booking, _ = await paid(client, paypal, place)
    held = await read(client, booking["id"], place.as_host)
    assert (held["status"], held["payment"]["status"]) == ("PENDING", "AUTHORIZED")
    assert kinds(paypal) == ["authorize"]
    body = await gql(client, DECLINE, {"id": booking["id"]}, headers=place.as_host)
    declined = body["data"]["declineBooking"]
    assert (declined["status"], declined["payment"]["status"]) == ("CANCELED", "CANCELED")
    # The void's own webhook came while the release was in flight: it changed nothing.
    assert paypal.fake.answers[-1] == ("PAYMENT.AUTHORIZATION.VOIDED", 200)
    assert kinds(paypal) == ["authorize", "void"]
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("RELEASE", "SUCCEEDED")]


async def test_a_replayed_event_applies_once_even_ten_deliveries_five_at_a_time(
    client: httpx.AsyncClient, database: Database, paypal: PayPal
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    paypal.fake.approve(paypal.order(started)["id"])
    [approved] = paypal.fake.take_unsent()  # delivered below, by the test
    outcomes = []
    for _ in range(2):
        answers = await asyncio.gather(*(paypal.fake.send(approved) for _ in range(5)))
        assert [answer.status_code for answer in answers] == [200] * 5
        outcomes += [answer.json()["outcome"] for answer in answers]
    assert sorted(outcomes) == ["APPLIED"] + ["REPLAYED"] * 9
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert kinds(paypal) == ["capture"]
    captured = [d for d in paypal.fake.sent if d.event_type == "PAYMENT.CAPTURE.COMPLETED"]
    for _ in range(3):
        assert (await paypal.fake.send(captured[0])).json()["outcome"] == "REPLAYED"
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "SUCCEEDED")]
    assert await count(database, OutboxEvent, OutboxEvent.kind == "BookingConfirmed") == 1
    assert await count(database, ProviderEvent) == 2


async def test_a_forged_delivery_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, database: Database, paypal: PayPal
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    paypal.fake.approve(paypal.order(started)["id"])
    [approved] = paypal.fake.take_unsent()
    tampered = json.loads(approved.body)
    tampered["resource"]["purchase_units"][0]["amount"]["value"] = "1.00"
    other = paypal.fake.webhook("CHECKOUT.ORDER.APPROVED", approved.event["resource"],
                                webhook_id="WH-SOMEONE-ELSES")  # fmt: skip
    forgeries = [
        Delivery(approved.event_type, approved.headers, json.dumps(tampered).encode()),
        Delivery(
            approved.event_type,
            {**approved.headers, "PAYPAL-TRANSMISSION-SIG": "AAAA"},
            approved.body,
        ),  # fmt: skip
        Delivery(approved.event_type, other[0], other[1]),  # signed for another webhook
        Delivery(approved.event_type, {"Content-Type": "application/json"}, approved.body),
    ]
    for forged in forgeries:
        answer = await paypal.fake.send(forged)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "BAD_SIGNATURE"
    assert await count(database, ProviderEvent) == 0
    assert (await read(client, booking["id"], place.as_guest))["status"] == "PENDING"
    assert paypal.fake.moves == []
    answer = await paypal.fake.send(approved)  # the real one
    assert (answer.status_code, answer.json()["outcome"]) == (200, "APPLIED")


async def test_without_a_webhook_id_the_endpoint_is_not_there(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    answer = await client.post("/webhooks/paypal", content=b"{}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


async def test_an_unknown_type_is_answered_and_ignored(
    client: httpx.AsyncClient, database: Database, paypal: PayPal
) -> None:
    headers, body = paypal.fake.webhook(
        "CUSTOMER.DISPUTE.CREATED", {"dispute_id": "PP-D-1"}, webhook_id=WEBHOOK_ID
    )
    answer = await paypal.fake.send(Delivery("CUSTOMER.DISPUTE.CREATED", headers, body))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "IGNORED")
    assert await count(database, ProviderEvent, ProviderEvent.processed_at.is_(None)) == 1


async def test_a_pending_refund_moves_the_payment_only_when_its_webhook_says_it_completed(
    client: httpx.AsyncClient, database: Database, paypal: PayPal
) -> None:
    place = await a_place(client, cancellationPolicy="FIRM")
    booking, _ = await paid(client, paypal, place)
    paypal.fake.refunds_pending()
    canceled = (await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest))["data"][
        "cancelBooking"
    ]
    assert canceled["status"] == "CANCELED"
    assert (canceled["payment"]["status"], canceled["payment"]["refundedAmount"]["amount"]) == (
        "SUCCEEDED", "0.00"
    )  # fmt: skip
    [refund] = paypal.fake.refunds.values()
    assert (refund["status"], refund["amount"]["value"]) == ("PENDING", "100.00")
    assert (await ledger(database))[-1] == ("REFUND", "REQUESTED")

    await paypal.fake.finish_refund(refund["id"])
    after = await read(client, booking["id"], place.as_guest)
    assert (after["payment"]["status"], after["payment"]["refundedAmount"]["amount"]) == (
        "PARTIALLY_REFUNDED", "100.00"
    )  # fmt: skip
    assert (await ledger(database))[-1] == ("REFUND", "SUCCEEDED")
    [refunded] = [d for d in paypal.fake.sent if d.event_type == "PAYMENT.CAPTURE.REFUNDED"]
    for _ in range(3):
        assert (await paypal.fake.send(refunded)).json()["outcome"] == "REPLAYED"
    assert await count(database, OutboxEvent, OutboxEvent.kind == "PaymentRefunded") == 1


async def test_a_pending_refund_whose_webhook_is_lost_is_confirmed_by_the_worker(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, paypal: PayPal
) -> None:
    place = await a_place(client)
    booking, _ = await paid(client, paypal, place)
    paypal.fake.refunds_pending()
    await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_host)
    [refund] = paypal.fake.refunds.values()
    await paypal.fake.finish_refund(refund["id"], deliver=False)
    clock.advance(minutes=11)
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()
    assert ("GET", f"/v2/payments/refunds/{refund['id']}") in paypal.fake.requests
    after = await read(client, booking["id"], place.as_guest)
    assert (after["payment"]["status"], after["payment"]["refundedAmount"]["amount"]) == (
        "REFUNDED", "262.20"
    )  # fmt: skip
    assert len(paypal.fake.refunds) == 1


async def test_a_refund_made_at_paypal_is_recorded_once(
    client: httpx.AsyncClient, database: Database, paypal: PayPal
) -> None:
    place = await a_place(client)
    booking, _ = await paid(client, paypal, place)
    [capture_id] = paypal.fake.captures
    paypal.fake.refund_capture(
        {"capture_id": capture_id}, {"amount": {"currency_code": "EUR", "value": "20.00"}}
    )  # in PayPal's dashboard
    await paypal.fake.deliver()
    after = await read(client, booking["id"], place.as_guest)
    assert (after["payment"]["status"], after["payment"]["refundedAmount"]["amount"]) == (
        "PARTIALLY_REFUNDED", "20.00"
    )  # fmt: skip
    [refunded] = [d for d in paypal.fake.sent if d.event_type == "PAYMENT.CAPTURE.REFUNDED"]
    await paypal.fake.send(refunded)
    assert (await ledger(database))[-1] == ("REFUND", "SUCCEEDED")
    assert len(await ledger(database)) == 3
    canceled = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_host)
    payment = canceled["data"]["cancelBooking"]["payment"]
    assert (payment["status"], payment["refundedAmount"]["amount"]) == ("REFUNDED", "262.20")
    assert [move[2] for move in paypal.fake.moves if move[0] == "refund"] == [
        Decimal("20.00"), Decimal("242.20")
    ]  # fmt: skip


async def deliver(paypal: PayPal, event_type: str, resource: dict) -> httpx.Response:
    headers, body = paypal.fake.webhook(event_type, resource, webhook_id=WEBHOOK_ID)
    return await paypal.fake.send(Delivery(event_type, headers, body))


async def test_a_hold_paypal_voids_lets_the_payment_go_and_a_denied_capture_fails_one(
    client: httpx.AsyncClient, database: Database, paypal: PayPal
) -> None:
    place = await a_place(client, instantBook=False)
    booking, _ = await paid(client, paypal, place)
    [authorization] = paypal.fake.authorizations.values()
    lapsed = {**authorization, "status": "VOIDED"}  # after PayPal's 29 days, say
    assert (await deliver(paypal, "PAYMENT.AUTHORIZATION.VOIDED", lapsed)).status_code == 200
    after = await read(client, booking["id"], place.as_host)
    assert (after["status"], after["payment"]["status"]) == ("PENDING", "FAILED")

    instant = await a_place(client)
    other = await booked(client, instant, 20, 22)
    started = await start(client, instant, other["id"])
    order = paypal.order(started)
    denied = {
        "id": "CAPTURE-DENIED-1",
        "status": "DECLINED",
        "amount": order["purchase_units"][0]["amount"],
        "status_details": {"reason": "RISK"},
        "supplementary_data": {"related_ids": {"order_id": order["id"]}},
    }
    wrong = {**denied, "amount": {"currency_code": "EUR", "value": "1.00"}}
    assert (await deliver(paypal, "PAYMENT.CAPTURE.DENIED", wrong)).status_code == 200
    assert (await read(client, other["id"], instant.as_guest))["payment"]["status"] == "PENDING"
    assert (await deliver(paypal, "PAYMENT.CAPTURE.DENIED", denied)).status_code == 200
    assert (await read(client, other["id"], instant.as_guest))["payment"]["status"] == "FAILED"
