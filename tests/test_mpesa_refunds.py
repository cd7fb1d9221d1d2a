"""M-Pesa refunds through HTTP: a refund is a B2C payment to the number that paid, made through
the fake of Daraja (tests/fakes/mpesa_api.py). Daraja only takes the request at once; the
refund waits (REQUESTED, the payment unmoved) until M-Pesa posts its result to our ResultURL,
or, when that is lost, until the worker's Transaction Status query is answered on its own
callback."""

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette

from app.wiring import build_payment_gateways
from db.database import Database
from db.models import OutboxEvent, PaymentOperation, ProviderEvent
from gateways.mpesa import MpesaGateway
from gateways.payments import PaymentDeclined
from tests.accounts_helpers import error_code
from tests.booking_helpers import CANCEL, Place, a_place, booked, read
from tests.fakes.mpesa_api import (
    B2C_SHORTCODE,
    CONSUMER_SECRET,
    INITIATOR_NAME,
    PASSKEY,
    SECURITY_CREDENTIAL,
    SHORTCODE,
)
from tests.helpers import FakeClock, gql
from tests.mpesa_helpers import (
    CALLBACK_SECRET,
    KES,
    Mpesa,
    count,
    mpesa_configured,
    start,
    worker_of,
)

TOTAL = "12540.00"
ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
INITIATOR = {
    "mpesa_initiator_name": INITIATOR_NAME,
    "mpesa_security_credential": SecretStr(SECURITY_CREDENTIAL),
    "mpesa_b2c_shortcode": B2C_SHORTCODE,
}


@pytest.fixture
async def mpesa(app: Starlette, client: httpx.AsyncClient) -> AsyncIterator[Mpesa]:
    """M-Pesa configured against the fake, with a B2C initiator: refunds are made."""
    async with mpesa_configured(app, client, **INITIATOR) as configured:
        yield configured


async def paid(client: httpx.AsyncClient, mpesa: Mpesa, place: Place) -> dict:
    """A KES booking paid from 0712345678 on the phone, and confirmed."""
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"], phone="0712 345 678")
    checkout_id = next(key for key, push in mpesa.fake.pushes.items() if push["result"] is None)
    await mpesa.fake.approve(checkout_id)
    confirmed = await read(client, booking["id"], place.as_guest)
    assert confirmed is not None
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    return {**booking, "checkout_id": checkout_id}


async def cancel(client: httpx.AsyncClient, booking_id: str, headers: dict[str, str]) -> dict:
    body = await gql(client, CANCEL, {"id": booking_id}, headers=headers)
    assert "errors" not in body, body
    return body["data"]["cancelBooking"]


async def money(client: httpx.AsyncClient, place: Place, booking_id: str) -> tuple[str, str, str]:
    booking = await read(client, booking_id, place.as_guest)
    assert booking is not None
    payment = booking["payment"]
    return booking["status"], payment["status"], payment["refundedAmount"]["amount"]


async def refunds(database: Database) -> list[tuple[str, int, str, str | None]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(
                PaymentOperation.status,
                PaymentOperation.amount_minor,
                PaymentOperation.idempotency_key,
                PaymentOperation.provider_reference,
            )
            .where(PaymentOperation.kind == "REFUND")
            .order_by(PaymentOperation.id)
        )
    return [tuple(row) for row in rows]


async def refunded_events(database: Database) -> int:
    return await count(database, OutboxEvent, OutboxEvent.kind == "PaymentRefunded")


def path(url: str) -> str:
    return url.removeprefix("http://testserver")


async def test_a_host_cancellation_is_paid_back_to_the_phone_once_m_pesa_says_so(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await paid(client, mpesa, place)

    canceled = await cancel(client, booking["id"], place.as_host)
    assert canceled["status"] == "CANCELED"
    assert canceled["refundAmount"]["amount"] == TOTAL
    # Daraja took the request; nothing has moved yet.
    assert await money(client, place, booking["id"]) == ("CANCELED", "SUCCEEDED", "0.00")
    originator_id, payout = mpesa.fake.only_payout()
    sent = payout["request"]
    assert sent["CommandID"] == "BusinessPayment"
    assert sent["Amount"] == 12540
    assert (sent["PartyA"], sent["PartyB"]) == (B2C_SHORTCODE, "254712345678")
    assert (sent["InitiatorName"], sent["SecurityCredential"]) == (
        INITIATOR_NAME, SECURITY_CREDENTIAL
    )  # fmt: skip
    hooks = f"http://testserver/webhooks/mpesa/{CALLBACK_SECRET}/b2c"
    assert (sent["ResultURL"], sent["QueueTimeOutURL"]) == (f"{hooks}/result", f"{hooks}/timeout")
    assert sent["Occassion"] == booking["checkout_id"]
    [(status, amount, key, reference)] = await refunds(database)
    assert (status, amount, reference) == ("REQUESTED", 1_254_000, originator_id)
    assert originator_id == key  # our idempotency key: Daraja refuses a second one
    assert await refunded_events(database) == 0

    await mpesa.fake.pay_out(originator_id)
    assert mpesa.fake.delivered[-1][1:] == (200, ACK)
    assert await money(client, place, booking["id"]) == ("CANCELED", "REFUNDED", TOTAL)
    receipt = payout["transaction_id"]
    assert await refunds(database) == [("SUCCEEDED", 1_254_000, key, receipt)]
    assert await refunded_events(database) == 1

    # Daraja posts it again, five times at once: recorded once, nothing moves again.
    replays = await asyncio.gather(*(mpesa.fake.deliver_payout(originator_id) for _ in range(5)))
    assert {(r.status_code, r.json() == ACK) for r in replays} == {(200, True)}
    assert await count(database, ProviderEvent, ProviderEvent.type == "B2C result") == 1
    assert await money(client, place, booking["id"]) == ("CANCELED", "REFUNDED", TOTAL)
    assert await refunds(database) == [("SUCCEEDED", 1_254_000, key, receipt)]
    assert await refunded_events(database) == 1

    clock.advance(minutes=30)
    await worker_of(app).run_once()
    assert (mpesa.fake.b2c_requests, mpesa.fake.status_queries) == (1, [])  # settled


async def test_a_guest_cancellation_pays_back_the_policys_part_in_whole_shillings(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    paybill = {**INITIATOR, "mpesa_b2c_shortcode": None}  # unset: MPESA_SHORTCODE pays
    async with mpesa_configured(app, client, **paybill) as mpesa:
        mpesa.fake.b2c_shortcode = SHORTCODE
        place = await a_place(client, cancellationPolicy="FIRM", **KES)
        booking = await paid(client, mpesa, place)
        canceled = await cancel(client, booking["id"], place.as_guest)
        # FIRM, ten days ahead: half the nights (10,000 shillings) back.
        assert canceled["refundAmount"]["amount"] == "5000.00"
        originator_id, payout = mpesa.fake.only_payout()
        assert (payout["request"]["Amount"], payout["request"]["PartyA"]) == (5000, SHORTCODE)
        assert await money(client, place, booking["id"]) == ("CANCELED", "SUCCEEDED", "0.00")
        await mpesa.fake.pay_out(originator_id)
        assert await money(client, place, booking["id"]) == (
            "CANCELED", "PARTIALLY_REFUNDED", "5000.00"
        )  # fmt: skip
        [(status, amount, _, _)] = await refunds(database)
        assert (status, amount) == ("SUCCEEDED", 500_000)


async def test_a_refund_m_pesa_refuses_fails_in_the_ledger_and_moves_nothing(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = {**INITIATOR, "mpesa_security_credential": SecretStr("bm90IHRoZSBwYXNzd29yZA==")}
    async with mpesa_configured(app, client, **wrong) as mpesa:
        place = await a_place(client, **KES)
        booking = await paid(client, mpesa, place)
        await cancel(client, booking["id"], place.as_host)
        originator_id, _ = mpesa.fake.only_payout()
        result = await mpesa.fake.pay_out(originator_id)  # the initiator's password is wrong
        assert result["Result"]["ResultCode"] == 2001
        assert mpesa.fake.delivered[-1][1:] == (200, ACK)
        assert await money(client, place, booking["id"]) == ("CANCELED", "SUCCEEDED", "0.00")
        [(status, amount, _, _)] = await refunds(database)
        assert (status, amount) == ("FAILED", 1_254_000)
        async with database.read_session() as session:
            error = await session.scalar(
                select(PaymentOperation.error).where(PaymentOperation.kind == "REFUND")
            )
        assert error == "M-Pesa refused the refund (2001: The initiator information is invalid.)"
        assert any(
            "REFUND of payment" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records
        )
        assert await refunded_events(database) == 0
        # Redelivered, or a worker passing by: it stays failed, for a person.
        await mpesa.fake.deliver_payout(originator_id)
        clock.advance(minutes=30)
        await worker_of(app).run_once()
        assert (mpesa.fake.b2c_requests, mpesa.fake.status_queries) == (1, [])
        assert [row[0] for row in await refunds(database)] == ["FAILED"]


async def test_a_lost_result_is_found_by_the_workers_status_query(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await paid(client, mpesa, place)
    await cancel(client, booking["id"], place.as_host)
    originator_id, payout = mpesa.fake.only_payout()

    await worker_of(app).run_once()
    assert mpesa.fake.status_queries == []  # its result usually comes first: not asked yet
    clock.advance(minutes=10)
    await worker_of(app).run_once()
    [query] = mpesa.fake.status_queries
    assert query["OriginalConversationID"] == originator_id
    assert query["ResultURL"] == f"http://testserver/webhooks/mpesa/{CALLBACK_SECRET}/b2c/status"
    assert (query["Initiator"], query["PartyA"]) == (INITIATOR_NAME, B2C_SHORTCODE)
    # Not processed yet: "not found" decides nothing.
    [answered] = await mpesa.fake.answer_status_queries()
    assert (answered.status_code, answered.json()) == (200, ACK)
    assert await money(client, place, booking["id"]) == ("CANCELED", "SUCCEEDED", "0.00")
    assert [row[0] for row in await refunds(database)] == ["REQUESTED"]

    await mpesa.fake.pay_out(originator_id, deliver=False)  # paid; its result never comes
    clock.advance(minutes=10)
    await worker_of(app).run_once()
    assert len(mpesa.fake.status_queries) == 1
    await mpesa.fake.answer_status_queries()
    assert await money(client, place, booking["id"]) == ("CANCELED", "REFUNDED", TOTAL)
    receipt = payout["transaction_id"]
    assert await refunds(database) == [("SUCCEEDED", 1_254_000, originator_id, receipt)]
    assert mpesa.fake.b2c_requests == 1  # asked about, never paid twice

    # The result arrives late after all: nothing moves again.
    assert (await mpesa.fake.deliver_payout(originator_id)).status_code == 200
    assert await money(client, place, booking["id"]) == ("CANCELED", "REFUNDED", TOTAL)
    assert await refunded_events(database) == 1


async def test_a_result_racing_a_status_answer_refunds_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await paid(client, mpesa, place)
    await cancel(client, booking["id"], place.as_host)
    originator_id, _ = mpesa.fake.only_payout()
    await mpesa.fake.pay_out(originator_id, deliver=False)
    clock.advance(minutes=10)
    await worker_of(app).run_once()  # a status query out, while the result is on its way
    answered, *results = await asyncio.gather(
        mpesa.fake.answer_status_queries(),
        *(mpesa.fake.deliver_payout(originator_id) for _ in range(3)),
    )
    assert {r.status_code for r in [*answered, *results]} == {200}
    assert await money(client, place, booking["id"]) == ("CANCELED", "REFUNDED", TOTAL)
    assert [row[0] for row in await refunds(database)] == ["SUCCEEDED"]
    assert await refunded_events(database) == 1


async def test_a_queue_timeout_leaves_the_refund_waiting(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await paid(client, mpesa, place)
    await cancel(client, booking["id"], place.as_host)
    originator_id, _ = mpesa.fake.only_payout()
    response = await mpesa.fake.time_out(originator_id)
    assert (response.status_code, response.json()) == (200, ACK)
    assert await count(database, ProviderEvent, ProviderEvent.type == "queue timeout") == 1
    assert [row[0] for row in await refunds(database)] == ["REQUESTED"]
    assert await money(client, place, booking["id"]) == ("CANCELED", "SUCCEEDED", "0.00")
    await mpesa.fake.pay_out(originator_id)
    assert await money(client, place, booking["id"]) == ("CANCELED", "REFUNDED", TOTAL)


async def test_a_request_whose_answer_was_lost_is_recognised_when_asked_again(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await paid(client, mpesa, place)
    mpesa.fake.lose_answers = 1  # Daraja takes the request; its answer never reaches us
    request = {"query": CANCEL, "variables": {"id": booking["id"]}}
    response = await client.post("/graphql", json=request, headers=place.as_host)
    assert (response.status_code, error_code(response.json())) == (503, "SERVICE_UNAVAILABLE")
    assert await money(client, place, booking["id"]) == ("CANCELED", "SUCCEEDED", "0.00")
    [(status, _, key, reference)] = await refunds(database)
    assert (status, reference) == ("REQUESTED", None)

    clock.advance(minutes=1)
    await worker_of(app).run_once()  # asked again under the same OriginatorConversationID
    assert mpesa.fake.b2c_requests == 2
    assert len(mpesa.fake.payouts) == 1  # refused as a duplicate: one payment to the guest
    [(status, _, _, reference)] = await refunds(database)
    assert (status, reference) == ("REQUESTED", key)

    await mpesa.fake.pay_out(key)
    assert await money(client, place, booking["id"]) == ("CANCELED", "REFUNDED", TOTAL)


async def test_a_result_of_another_amount_is_not_believed(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await paid(client, mpesa, place)
    await cancel(client, booking["id"], place.as_host)
    originator_id, payout = mpesa.fake.only_payout()
    result = await mpesa.fake.pay_out(originator_id, deliver=False)
    [amount] = [p for p in result["Result"]["ResultParameters"]["ResultParameter"]
                if p["Key"] == "TransactionAmount"]  # fmt: skip
    amount["Value"] = 1
    response = await client.post(path(payout["request"]["ResultURL"]), json=result)
    assert (response.status_code, response.json()) == (200, ACK)  # acknowledged, not believed
    assert [row[0] for row in await refunds(database)] == ["REQUESTED"]
    assert await money(client, place, booking["id"]) == ("CANCELED", "SUCCEEDED", "0.00")
    await mpesa.fake.deliver_payout(originator_id)  # the true one still counts
    assert await money(client, place, booking["id"]) == ("CANCELED", "REFUNDED", TOTAL)


async def test_results_to_a_wrong_secret_are_not_found_and_bad_bodies_refused(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await paid(client, mpesa, place)
    await cancel(client, booking["id"], place.as_host)
    originator_id, _ = mpesa.fake.only_payout()
    result = await mpesa.fake.pay_out(originator_id, deliver=False)
    events = await count(database, ProviderEvent)
    for secret in ("wrong", CALLBACK_SECRET[:-1], CALLBACK_SECRET + "x", CALLBACK_SECRET.upper()):
        for kind in ("result", "timeout", "status"):
            response = await client.post(f"/webhooks/mpesa/{secret}/b2c/{kind}", json=result)
            assert response.status_code == 404
    response = await client.post(f"/webhooks/mpesa/{CALLBACK_SECRET}/b2c/other", json=result)
    assert response.status_code == 404
    without_amount = {"Result": {**result["Result"], "ResultParameters": {}}}
    bad_bodies = [b"not json", b"[]", b"{}", b'{"Result": {}}', b'{"Result": {"ResultCode": 0}}']
    for kind in ("result", "timeout", "status"):
        for bad in bad_bodies:
            response = await client.post(
                f"/webhooks/mpesa/{CALLBACK_SECRET}/b2c/{kind}", content=bad
            )
            assert (response.status_code, response.json()["error"]["code"]) == (400, "BAD_REQUEST")
    response = await client.post(
        f"/webhooks/mpesa/{CALLBACK_SECRET}/b2c/result", json=without_amount
    )
    assert response.status_code == 400
    assert await count(database, ProviderEvent) == events
    assert [row[0] for row in await refunds(database)] == ["REQUESTED"]


async def test_a_refund_with_cents_is_declined_not_rounded(app: Starlette, mpesa: Mpesa) -> None:
    """M-Pesa moves whole shillings: the services round a refund to that step; the gateway
    refuses anything else rather than pay a different amount."""
    gateway = app.state.services.payment_gateways.by_provider["MPESA"]
    assert isinstance(gateway, MpesaGateway)
    assert gateway.amount_step("KES") == 100
    with pytest.raises(PaymentDeclined, match="whole shillings"):
        await gateway.refund(
            "ws_CO_1", amount_minor=1_254_050, idempotency_key="k-1", payer="254712345678"
        )
    with pytest.raises(PaymentDeclined, match="did not keep the number"):
        await gateway.refund("ws_CO_1", amount_minor=1_254_000, idempotency_key="k-2", payer=None)
    assert (mpesa.fake.b2c_requests, mpesa.fake.payouts) == (0, {})


def test_the_initiators_credential_is_not_shown(app: Starlette) -> None:
    configured = app.state.settings.model_copy(
        update={
            "mpesa_consumer_key": "key",
            "mpesa_consumer_secret": SecretStr(CONSUMER_SECRET),
            "mpesa_shortcode": SHORTCODE,
            "mpesa_passkey": SecretStr(PASSKEY),
            "mpesa_callback_secret": SecretStr(CALLBACK_SECRET),
            **INITIATOR,
        }
    )
    gateway = build_payment_gateways(configured).by_provider["MPESA"]
    assert SECURITY_CREDENTIAL not in repr(configured)
    assert SECURITY_CREDENTIAL not in repr(gateway)
    assert SECURITY_CREDENTIAL not in repr(vars(gateway))


async def test_the_initiators_credential_is_never_logged_or_shown(
    client: httpx.AsyncClient,
    clock: FakeClock,
    mpesa: Mpesa,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    place = await a_place(client, **KES)
    booking = await paid(client, mpesa, place)
    await cancel(client, booking["id"], place.as_host)
    originator_id, _ = mpesa.fake.only_payout()
    await mpesa.fake.pay_out(originator_id)
    # Daraja's own side of it (the fake posting to our URLs) logs where it posts: not ours.
    ours = [r for r in caplog.records if not (r.name == "httpx" and "testserver" in r.message)]
    logged = "".join(f"{record.getMessage()} {record.__dict__}" for record in ours)
    assert "/mpesa/b2c/v3/paymentrequest" in logged
    assert f"webhooks/mpesa/{CALLBACK_SECRET}" not in logged
    for secret in (SECURITY_CREDENTIAL, CALLBACK_SECRET, PASSKEY, CONSUMER_SECRET):
        assert secret not in logged


async def test_a_result_for_no_refund_of_ours_is_acknowledged_and_kept(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    parameters = {"ResultParameter": [{"Key": "TransactionAmount", "Value": 10}]}
    body = {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": "someone-elses-1",
            "ConversationID": "AG_20261126_00000000000000000000",
            "TransactionID": "SG632NMUAB",
            "ResultParameters": parameters,
        }
    }
    response = await client.post(f"/webhooks/mpesa/{CALLBACK_SECRET}/b2c/result", json=body)
    assert (response.status_code, response.json()) == (200, ACK)
    assert await count(database, ProviderEvent, ProviderEvent.provider == "MPESA") == 1
    assert await refunds(database) == []


async def test_a_prompt_paid_after_the_hold_lapsed_is_paid_back_in_full(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"], phone="0712 345 678")
    checkout_id = next(key for key, push in mpesa.fake.pushes.items() if push["result"] is None)
    clock.advance(minutes=16)
    await worker_of(app).run_once()  # asked first (still being processed), then let go
    assert await money(client, place, booking["id"]) == ("CANCELED", "CANCELED", "0.00")

    await mpesa.fake.approve(checkout_id)  # the guest answers the prompt too late
    clock.advance(minutes=1)
    await worker_of(app).run_once()  # the refund, left to a worker by the callback
    originator_id, payout = mpesa.fake.only_payout()
    assert (payout["request"]["Amount"], payout["request"]["PartyB"]) == (12540, "254712345678")
    await mpesa.fake.pay_out(originator_id)
    assert await money(client, place, booking["id"]) == ("CANCELED", "CANCELED", TOTAL)
    assert [(status, amount) for status, amount, _, _ in await refunds(database)] == [
        ("SUCCEEDED", 1_254_000)
    ]
