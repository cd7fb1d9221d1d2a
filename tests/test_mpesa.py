"""M-Pesa through HTTP: startPayment(MPESA) prompts the guest's phone through a local fake of
Safaricom's Daraja API (tests/fakes/mpesa_api.py); the guest approves or cancels there, and
Daraja's callback (or, when it is lost, the worker's status query) decides the payment."""

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from starlette.applications import Starlette

from app.settings import Settings
from app.wiring import build_payment_gateways
from db.database import Database
from db.models import OutboxEvent, Payment, ProviderEvent
from tests.accounts_helpers import error_code
from tests.booking_helpers import CANCEL, MODIFY, Place, a_place, booked, day, read
from tests.fakes.mpesa_api import CONSUMER_KEY, CONSUMER_SECRET, PASSKEY, SHORTCODE
from tests.helpers import FakeClock, gql, make_settings
from tests.mpesa_helpers import (
    CALLBACK_SECRET,
    KES,
    START,
    Mpesa,
    count,
    ledger,
    mpesa_configured,
    start,
    state,
    worker_of,
)

PROVIDERS = "query($id: ID!) { booking(id: $id) { paymentProviders } }"
UPDATE_PHONE = "mutation($phone: String) { updateProfile(input: {phone: $phone}) { phone } }"


@pytest.fixture
async def mpesa(app: Starlette, client: httpx.AsyncClient) -> AsyncIterator[Mpesa]:
    """M-Pesa configured against the fake, without a B2C initiator: refunds left to a person."""
    async with mpesa_configured(app, client) as configured:
        yield configured


async def start_error(
    client: httpx.AsyncClient, place: Place, booking_id: str, phone: str | None = "0712345678"
) -> dict:
    body = await gql(client, START, {"id": booking_id, "phone": phone}, headers=place.as_guest)
    [error] = body["errors"]
    return error["extensions"]


async def test_a_kes_booking_paid_on_the_phone_is_confirmed_by_the_callback(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    listed = await gql(client, PROVIDERS, {"id": booking["id"]}, headers=place.as_guest)
    assert "MPESA" in listed["data"]["booking"]["paymentProviders"]

    started = await start(client, place, booking["id"], phone="0712 345 678")
    assert (started["clientSecret"], started["redirectUrl"]) == (None, None)
    assert started["payment"]["provider"] == "MPESA"
    assert started["payment"]["status"] == "PENDING"
    assert started["payment"]["amount"] == {"amount": "12540.00", "currency": "KES"}
    checkout_id, push = mpesa.fake.only_push()
    sent = push["request"]
    assert sent["Amount"] == 12540
    assert sent["PhoneNumber"] == sent["PartyA"] == "254712345678"
    assert (sent["BusinessShortCode"], sent["PartyB"]) == (SHORTCODE, SHORTCODE)
    assert sent["TransactionType"] == "CustomerPayBillOnline"
    assert sent["CallBackURL"] == f"http://testserver/webhooks/mpesa/{CALLBACK_SECRET}"
    # Asked again while the prompt is on the phone: the same payment, and no second prompt.
    again = await start(client, place, booking["id"])
    assert again["payment"]["id"] == started["payment"]["id"]
    assert len(mpesa.fake.pushes) == 1
    assert await state(client, place, booking["id"]) == ("PENDING", "PENDING")

    await mpesa.fake.approve(checkout_id)
    assert mpesa.fake.delivered[-1][1:] == (200, {"ResultCode": 0, "ResultDesc": "Accepted"})
    assert await state(client, place, booking["id"]) == ("CONFIRMED", "SUCCEEDED")
    receipt = push["metadata"][1]["Value"]
    assert await ledger(database) == [
        ("AUTHORIZE", "SUCCEEDED", checkout_id),
        ("CAPTURE", "SUCCEEDED", receipt),
    ]
    assert mpesa.fake.tokens_issued == 1  # one token for every call, until it nears expiry

    # Daraja sends it again, five times at once: recorded once, nothing more happens.
    replays = await asyncio.gather(*(mpesa.fake.deliver(checkout_id) for _ in range(5)))
    assert {response.status_code for response in replays} == {200}
    assert await count(database, ProviderEvent) == 1
    assert await ledger(database) == [
        ("AUTHORIZE", "SUCCEEDED", checkout_id),
        ("CAPTURE", "SUCCEEDED", receipt),
    ]
    assert await count(database, OutboxEvent, OutboxEvent.kind == "PaymentSucceeded") == 1
    assert await state(client, place, booking["id"]) == ("CONFIRMED", "SUCCEEDED")

    clock.advance(minutes=10)
    await worker_of(app).run_once()
    assert mpesa.fake.queries == 0  # settled: nobody asks M-Pesa about it


async def test_a_callback_to_a_wrong_secret_is_not_found_and_stores_nothing(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    body = await mpesa.fake.approve(checkout_id, deliver=False)
    for secret in ("wrong", CALLBACK_SECRET[:-1], CALLBACK_SECRET + "x", CALLBACK_SECRET.upper()):
        response = await client.post(f"/webhooks/mpesa/{secret}", json=body)
        assert response.status_code == 404
    assert await count(database, ProviderEvent) == 0
    assert await state(client, place, booking["id"]) == ("PENDING", "PENDING")


async def test_a_malformed_callback_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    paid = await mpesa.fake.approve(checkout_id, deliver=False)
    without_amount = {"Body": {"stkCallback": {**paid["Body"]["stkCallback"]}}}
    without_amount["Body"]["stkCallback"]["CallbackMetadata"] = {"Item": []}
    path = f"/webhooks/mpesa/{CALLBACK_SECRET}"
    for bad in (b"not json", b"[]", b'{"Body": {}}', b'{"Body": {"stkCallback": {}}}'):
        response = await client.post(path, content=bad)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BAD_REQUEST"
    assert (await client.post(path, json=without_amount)).status_code == 400
    assert await count(database, ProviderEvent) == 0
    assert await state(client, place, booking["id"]) == ("PENDING", "PENDING")


async def test_a_cancelled_prompt_fails_the_payment_and_the_guest_pays_again(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    first = await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    await mpesa.fake.cancel(checkout_id)
    assert mpesa.fake.delivered[-1][1] == 200
    assert await state(client, place, booking["id"]) == ("PENDING", "FAILED")
    assert await ledger(database) == []  # nothing moved, nothing left to ask for

    again = await start(client, place, booking["id"])
    assert again["payment"]["id"] != first["payment"]["id"]
    assert again["payment"]["status"] == "PENDING"
    assert len(mpesa.fake.pushes) == 2
    second = next(key for key in mpesa.fake.pushes if key != checkout_id)
    await mpesa.fake.approve(second)
    assert await state(client, place, booking["id"]) == ("CONFIRMED", "SUCCEEDED")
    async with database.read_session() as session:
        statuses = (await session.scalars(select(Payment.status).order_by(Payment.id))).all()
    assert statuses == ["FAILED", "SUCCEEDED"]


async def test_a_lost_callback_is_recovered_by_the_workers_status_query(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()

    await worker_of(app).run_once()
    assert mpesa.fake.queries == 0  # asked only once the guest had time to answer
    clock.advance(minutes=2)
    await worker_of(app).run_once()  # "The transaction is being processed": still waiting
    assert mpesa.fake.queries == 1
    assert await state(client, place, booking["id"]) == ("PENDING", "PENDING")

    await mpesa.fake.approve(checkout_id, deliver=False)  # paid; the callback never comes
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    assert mpesa.fake.queries == 2
    assert await state(client, place, booking["id"]) == ("CONFIRMED", "SUCCEEDED")
    assert await ledger(database) == [
        ("AUTHORIZE", "SUCCEEDED", checkout_id),
        ("CAPTURE", "SUCCEEDED", checkout_id),
    ]
    # The callback arrives late after all: it changes nothing.
    assert (await mpesa.fake.deliver(checkout_id)).status_code == 200
    assert len(await ledger(database)) == 2


@pytest.mark.parametrize(
    "result",
    [(1032, "Request cancelled by user"), (1, "The balance is insufficient for the transaction")],
)
async def test_a_refusal_whose_callback_is_lost_lets_the_guest_pay_again(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    mpesa: Mpesa,
    result: tuple[int, str],
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    await mpesa.fake.cancel(checkout_id, deliver=False, result=result)
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    assert await state(client, place, booking["id"]) == ("PENDING", "FAILED")
    await start(client, place, booking["id"])
    assert len(mpesa.fake.pushes) == 2


async def test_a_callback_for_another_amount_is_not_believed(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    body = await mpesa.fake.approve(checkout_id, deliver=False)
    [amount] = [i for i in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
                if i["Name"] == "Amount"]  # fmt: skip
    amount["Value"] = 1
    response = await client.post(mpesa.callback_url.replace("http://testserver", ""), json=body)
    assert response.status_code == 200  # acknowledged, so Daraja stops; not believed
    assert await state(client, place, booking["id"]) == ("PENDING", "PENDING")
    assert await ledger(database) == []


async def test_an_amount_with_cents_is_refused_before_any_prompt(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(
        client,
        nightlyPrice={"amount": "5000.50", "currency": "KES"},
        cleaningFee={"amount": "1000", "currency": "KES"},
    )
    booking = await booked(client, place, 10, 12)  # 11,001 + 14% = 12,541.14 shillings
    error = await start_error(client, place, booking["id"])
    assert error["code"] == "PAYMENT_FAILED"
    assert mpesa.fake.pushes == {}


async def test_mpesa_is_not_offered_for_dollars(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(
        client,
        nightlyPrice={"amount": "100", "currency": "USD"},
        cleaningFee={"amount": "30", "currency": "USD"},
    )
    booking = await booked(client, place, 10, 12)
    listed = await gql(client, PROVIDERS, {"id": booking["id"]}, headers=place.as_guest)
    assert "MPESA" not in listed["data"]["booking"]["paymentProviders"]
    error = await start_error(client, place, booking["id"])
    problem = "MPESA does not take payments in USD; the booking's paymentProviders do"
    assert error == {"code": "BAD_USER_INPUT", "fields": {"provider": problem}}
    assert mpesa.fake.pushes == {}


async def test_mpesa_is_not_offered_for_a_request_to_book(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa
) -> None:
    """M-Pesa takes the money as the guest approves: it cannot hold it until the host answers."""
    place = await a_place(client, instantBook=False, **KES)
    booking = await booked(client, place, 10, 12)
    listed = await gql(client, PROVIDERS, {"id": booking["id"]}, headers=place.as_guest)
    assert "MPESA" not in listed["data"]["booking"]["paymentProviders"]
    assert "TEST" in listed["data"]["booking"]["paymentProviders"]
    error = await start_error(client, place, booking["id"])
    assert error["code"] == "BAD_USER_INPUT"
    assert "cannot hold it" in error["fields"]["provider"]
    assert mpesa.fake.pushes == {}


@pytest.mark.parametrize("phone", ["12345", "0812345678", "+351912345678", "07123456789"])
async def test_a_number_m_pesa_cannot_prompt_is_bad_input(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa, phone: str
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    error = await start_error(client, place, booking["id"], phone=phone)
    assert error["code"] == "BAD_USER_INPUT"
    assert "Kenyan mobile number" in error["fields"]["phoneNumber"]
    assert mpesa.fake.pushes == {}


async def test_the_profile_phone_is_prompted_when_none_is_given(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    error = await start_error(client, place, booking["id"], phone=None)
    assert error == {"code": "BAD_USER_INPUT", "fields": {"phoneNumber": "is needed to pay "
                     "with M-Pesa"}}  # fmt: skip
    updated = await gql(client, UPDATE_PHONE, {"phone": "+254112345678"}, headers=place.as_guest)
    assert "errors" not in updated, updated
    await start(client, place, booking["id"], phone=None)
    _, push = mpesa.fake.only_push()
    assert push["request"]["PhoneNumber"] == "254112345678"


async def test_daraja_out_of_reach_is_unavailable_and_a_refusal_is_a_failed_payment(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    variables = {"id": booking["id"], "phone": "0712345678"}
    request = {"query": START, "variables": variables}
    mpesa.fake.failures = [503]  # at the token
    response = await client.post("/graphql", json=request, headers=place.as_guest)
    assert (response.status_code, error_code(response.json())) == (503, "SERVICE_UNAVAILABLE")
    # Without an answer, a prompt may be on the phone all the same: none again until it lapses.
    body = await gql(client, START, variables, headers=place.as_guest)
    assert error_code(body) == "CONFLICT"
    clock.advance(minutes=1)
    mpesa.fake.failures = [None, 500]  # the token, then at the push
    response = await client.post("/graphql", json=request, headers=place.as_guest)
    assert (response.status_code, error_code(response.json())) == (503, "SERVICE_UNAVAILABLE")
    clock.advance(minutes=1)
    mpesa.fake.failures = [400]  # the push refused
    body = await gql(client, START, variables, headers=place.as_guest)
    assert error_code(body) == "PAYMENT_FAILED"
    assert body["errors"][0]["message"] == "Bad Request - Invalid PhoneNumber"
    assert mpesa.fake.pushes == {}
    started = await start(client, place, booking["id"])  # refused: nothing to wait for
    assert started["payment"]["status"] == "PENDING"
    assert len(mpesa.fake.pushes) == 1


async def test_an_expired_token_is_renewed(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    first = await booked(client, place, 10, 12)
    await start(client, place, first["id"])
    mpesa.fake.tokens.clear()  # Daraja stops honouring it before it said it would
    second = await booked(client, place, 14, 16)
    await start(client, place, second["id"])
    assert len(mpesa.fake.pushes) == 2
    assert mpesa.fake.tokens_issued == 2


async def test_the_callback_secret_is_never_logged(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    await mpesa.fake.approve(checkout_id)
    assert await state(client, place, booking["id"]) == ("CONFIRMED", "SUCCEEDED")
    # Daraja's own side of it (the fake posting the callback) logs where it posts: not ours.
    ours = [r for r in caplog.records if not (r.name == "httpx" and "testserver" in r.message)]
    logged = "".join(f"{record.getMessage()} {record.__dict__}" for record in ours)
    assert "/webhooks/mpesa/" in logged
    for secret in (CALLBACK_SECRET, PASSKEY, CONSUMER_SECRET):
        assert secret not in logged


async def test_callbacks_are_not_found_where_m_pesa_is_not_configured(
    client: httpx.AsyncClient, database: Database
) -> None:
    for secret in ("", "x", CALLBACK_SECRET):
        response = await client.post(f"/webhooks/mpesa/{secret}", json={"Body": {}})
        assert response.status_code == 404
    assert await count(database, ProviderEvent) == 0


async def test_a_callback_for_no_payment_of_ours_is_acknowledged_and_kept(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    body = await mpesa.fake.approve(checkout_id, deliver=False)
    body["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_not_ours"
    response = await client.post(mpesa.callback_url.replace("http://testserver", ""), json=body)
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert await count(database, ProviderEvent, ProviderEvent.provider == "MPESA") == 1
    assert await state(client, place, booking["id"]) == ("PENDING", "PENDING")


def test_m_pesa_is_offered_only_when_configured(settings: Settings) -> None:
    complete = {
        "mpesa_consumer_key": CONSUMER_KEY,
        "mpesa_consumer_secret": SecretStr(CONSUMER_SECRET),
        "mpesa_shortcode": SHORTCODE,
        "mpesa_passkey": SecretStr(PASSKEY),
        "mpesa_callback_secret": SecretStr(CALLBACK_SECRET),
    }
    configured = settings.model_copy(update=complete)
    assert "MPESA" in build_payment_gateways(configured).by_provider
    assert configured.mpesa_callback_url == (
        f"{settings.public_url}/webhooks/mpesa/{CALLBACK_SECRET}"
    )
    for missing in complete:
        partial = settings.model_copy(update={**complete, missing: None})
        assert "MPESA" not in build_payment_gateways(partial).by_provider
    for secret in (CALLBACK_SECRET, PASSKEY, CONSUMER_SECRET):
        assert secret not in repr(configured)
        assert secret not in repr(build_payment_gateways(configured).by_provider["MPESA"])


@pytest.mark.parametrize("secret", ["short", "with spaces in it, long enough to pass", "a/b" * 9])
def test_a_guessable_or_unplain_callback_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError):
        make_settings(None, MPESA_CALLBACK_SECRET=secret)


async def test_racing_starts_prompt_the_phone_once(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    variables = {"id": booking["id"], "phone": "0712345678"}
    bodies = await asyncio.gather(
        *(gql(client, START, variables, headers=place.as_guest) for _ in range(4))
    )
    started = [body["data"]["startPayment"] for body in bodies if "errors" not in body]
    refused = [error_code(body) for body in bodies if "errors" in body]
    assert len(mpesa.fake.pushes) == 1
    assert started and {s["payment"]["id"] for s in started} == {started[0]["payment"]["id"]}
    assert set(refused) <= {"CONFLICT"}
    assert await count(database, Payment) == 1


async def test_a_cancellation_refund_is_left_for_a_person_to_make(
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    mpesa: Mpesa,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a B2C initiator configured, Roost does not make M-Pesa refunds."""
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    await mpesa.fake.approve(checkout_id)
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_host)
    canceled = body["data"]["cancelBooking"]
    assert canceled["status"] == "CANCELED"
    assert canceled["refundAmount"]["amount"] == "12540.00"
    assert canceled["payment"]["status"] == "SUCCEEDED"  # nothing went back
    kinds = [(kind, status) for kind, status, _ in await ledger(database)]
    assert kinds == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "SUCCEEDED"), ("REFUND", "FAILED")]
    assert any("REFUND of payment" in r.getMessage() and r.levelname == "ERROR"
               for r in caplog.records)  # fmt: skip


async def test_a_dearer_stay_cannot_be_charged_to_an_m_pesa_payment(
    client: httpx.AsyncClient, clock: FakeClock, mpesa: Mpesa
) -> None:
    place = await a_place(client, **KES)
    booking = await booked(client, place, 10, 12)
    await start(client, place, booking["id"])
    checkout_id, _ = mpesa.fake.only_push()
    await mpesa.fake.approve(checkout_id)
    variables = {"id": booking["id"], "in": day(10), "out": day(13), "guests": 2}
    body = await gql(client, MODIFY, variables, headers=place.as_guest)
    assert error_code(body) == "PAYMENT_FAILED"
    kept = await read(client, booking["id"], place.as_guest)
    assert kept is not None
    assert (kept["checkOut"], kept["status"]) == (day(12), "CONFIRMED")
