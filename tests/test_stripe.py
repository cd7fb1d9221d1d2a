"""Stripe through HTTP: the app's StripeGateway (the official SDK) pointed at a local fake of
Stripe's API (tests/fakes/stripe_api.py); the guest's browser confirms as Stripe.js would."""

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.wiring import build_worker
from app.worker import Worker
from db.database import Database
from gateways.payments import CaptureMethod, PaymentDeclined, ProviderUnavailable
from gateways.stripe import StripeGateway
from tests.booking_helpers import (
    ACCEPT,
    CANCEL,
    DECLINE,
    MODIFY,
    START_PAYMENT,
    a_place,
    booked,
    day,
    pay,
    read,
)
from tests.fakes.stripe_api import SECRET_KEY, confirm_in_browser
from tests.helpers import FakeClock, gql
from tests.stripe_helpers import Stripe, ledger, paid_in_browser, start, stripe_serving


@pytest.fixture
async def stripe(app: Starlette) -> AsyncIterator[Stripe]:
    async with stripe_serving(app) as stripe:
        yield stripe


def priced_in(currency: str, nightly: str, cleaning: str) -> dict[str, object]:
    return {
        "nightlyPrice": {"amount": nightly, "currency": currency},
        "cleaningFee": {"amount": cleaning, "currency": currency},
    }


# Starting a payment.


async def test_start_payment_creates_an_intent_for_the_booking_and_answers_its_secret(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)  # 262.20 EUR
    started = await start(client, place, booking["id"])
    assert started["payment"]["provider"] == "STRIPE"
    assert started["payment"]["amount"] == {"amount": "262.20", "currency": "EUR"}
    intent = stripe.intent(started["clientSecret"])
    assert intent["client_secret"] == started["clientSecret"]
    assert (intent["amount"], intent["currency"]) == (26_220, "eur")
    assert intent["capture_method"] == "automatic"  # instant book
    assert intent["status"] == "requires_payment_method"
    assert set(intent["metadata"]) == {"booking_id", "payment_id"}
    # Asked again, the same intent: the same idempotency key, replayed by Stripe.
    again = await start(client, place, booking["id"])
    assert again == started
    assert len(stripe.fake.intents) == 1
    creates = [r for r in stripe.fake.requests if r[:2] == ("POST", "/v1/payment_intents")]
    assert len(creates) == 2


async def test_a_request_to_book_is_only_held_on_the_card(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    assert stripe.intent(started["clientSecret"])["capture_method"] == "manual"
    confirmed = await confirm_in_browser(stripe.url, started["clientSecret"])
    assert confirmed.json()["status"] == "requires_capture"


async def test_yen_are_sent_as_they_are(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, **priced_in("JPY", "12000", "3000"))
    booking = await booked(client, place, 10, 12)  # 27,000 + 14% = 30,780 yen
    started = await start(client, place, booking["id"])
    assert started["payment"]["amount"] == {"amount": "30780", "currency": "JPY"}
    intent = stripe.intent(started["clientSecret"])
    assert (intent["amount"], intent["currency"]) == (30_780, "jpy")


async def test_dinars_are_sent_in_fils_a_multiple_of_ten(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, **priced_in("KWD", "30.000", "5.000"))
    booking = await booked(client, place, 10, 12)  # 65.000 + 14% = 74.100 KWD
    started = await start(client, place, booking["id"])
    assert started["payment"]["amount"] == {"amount": "74.100", "currency": "KWD"}
    intent = stripe.intent(started["clientSecret"])
    assert (intent["amount"], intent["currency"]) == (74_100, "kwd")


async def test_dinars_stripe_cannot_take_exactly_are_refused_not_rounded(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, **priced_in("KWD", "30.005", "5.000"))
    booking = await booked(client, place, 10, 12)  # 65.010 + 9.101 = 74.111 KWD
    body = await gql(
        client, START_PAYMENT, {"id": booking["id"], "provider": "STRIPE"}, headers=place.as_guest
    )
    assert body["errors"][0]["extensions"]["code"] == "PAYMENT_FAILED"
    assert "multiples of 0.010" in body["errors"][0]["message"]
    assert stripe.fake.intents == {}


async def test_stripe_out_of_reach_is_service_unavailable(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    stripe.fake.outage(1, status=503)
    response = await client.post(
        "/graphql",
        json={"query": START_PAYMENT, "variables": {"id": booking["id"], "provider": "STRIPE"}},
        headers=place.as_guest,
    )
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert (await start(client, place, booking["id"]))["clientSecret"]


# The gateway's answers: declines, and no answer.


async def a_gateway(stripe: Stripe, **options: object) -> StripeGateway:
    values: dict = {"api_key": SECRET_KEY, "api_base": stripe.url, "max_network_retries": 0}
    return StripeGateway(**(values | options))


async def paid_intent(gateway: StripeGateway, stripe: Stripe, capture: CaptureMethod) -> str:
    intent = await gateway.create(
        amount_minor=10_000, currency="EUR", description="d", idempotency_key=secrets.token_hex(8),
        capture=capture, metadata={"booking_id": "1", "payment_id": "1"},
    )  # fmt: skip
    assert intent.client_secret is not None
    assert (await confirm_in_browser(stripe.url, intent.client_secret)).status_code == 200
    return intent.reference


async def test_capture_release_and_refunds_move_the_intent(stripe: Stripe) -> None:
    gateway = await a_gateway(stripe)
    held = await paid_intent(gateway, stripe, "manual")
    charge = await gateway.capture(held, amount_minor=10_000, idempotency_key="cap")
    assert charge == stripe.fake.intents[held]["latest_charge"]
    assert stripe.fake.intents[held]["status"] == "succeeded"
    first = await gateway.refund(held, amount_minor=2_500, idempotency_key="re-1")
    assert await gateway.refund(held, amount_minor=2_500, idempotency_key="re-1") == first
    await gateway.refund(held, amount_minor=7_500, idempotency_key="re-2")
    with pytest.raises(PaymentDeclined, match="greater than unrefunded"):
        await gateway.refund(held, amount_minor=1, idempotency_key="re-3")
    assert sum(refund["amount"] for refund in stripe.fake.refunds.values()) == 10_000

    released = await paid_intent(gateway, stripe, "manual")
    assert await gateway.release(released, idempotency_key="rel") == released
    assert stripe.fake.intents[released]["status"] == "canceled"
    with pytest.raises(PaymentDeclined, match="status of canceled"):
        await gateway.capture(released, amount_minor=10_000, idempotency_key="cap-2")


async def test_a_longer_stay_cannot_be_charged_to_a_stripe_payment(stripe: Stripe) -> None:
    gateway = await a_gateway(stripe)
    paid = await paid_intent(gateway, stripe, "automatic")
    with pytest.raises(PaymentDeclined, match="cannot be charged more"):
        await gateway.charge(paid, amount_minor=500, currency="EUR", idempotency_key="more")
    assert len(stripe.fake.intents) == 1


async def test_errors_at_stripe_timeouts_and_a_bad_key_are_no_answer(stripe: Stripe) -> None:
    gateway = await a_gateway(stripe, timeout_seconds=0.3)
    paid = await paid_intent(gateway, stripe, "automatic")
    stripe.fake.outage(1, status=500)
    with pytest.raises(ProviderUnavailable):
        await gateway.refund(paid, amount_minor=100, idempotency_key="re")
    stripe.fake.outage(1, hang=True)
    with pytest.raises(ProviderUnavailable):
        await gateway.refund(paid, amount_minor=100, idempotency_key="re")
    stripe.fake.outage(0)
    with pytest.raises(ProviderUnavailable):
        await (await a_gateway(stripe, api_key="sk_test_wrong")).look_up(paid)
    assert stripe.fake.refunds == {}  # nothing moved: asked again, the same key refunds once
    await gateway.refund(paid, amount_minor=100, idempotency_key="re")
    await gateway.refund(paid, amount_minor=100, idempotency_key="re")
    assert [refund["amount"] for refund in stripe.fake.refunds.values()] == [100]


# Confirmation without webhooks: the worker asks Stripe about payments still waiting.


def worker_of(app: Starlette) -> Worker:
    return build_worker(app.state.settings, app.state.database, app.state.services)


async def test_a_paid_instant_booking_is_confirmed_by_the_worker_asking_stripe(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking, intent = await paid_in_browser(client, stripe, place)
    assert intent["status"] == "succeeded"
    await worker_of(app).run_once()  # the guest may still be paying: not asked yet
    assert not any(method == "GET" for method, _, _ in stripe.fake.requests)
    assert (await read(client, booking["id"], place.as_guest))["status"] == "PENDING"

    clock.advance(minutes=2)
    await asyncio.gather(worker_of(app).run_once(), worker_of(app).run_once())
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    # Stripe captured as the guest paid: recorded, not asked for again.
    assert await ledger(database) == [
        ("AUTHORIZE", "SUCCEEDED", intent["id"]),
        ("CAPTURE", "SUCCEEDED", intent["latest_charge"]),
    ]
    assert not any(path.endswith("/capture") for _, path, _ in stripe.fake.requests)
    clock.advance(minutes=10)
    await worker_of(app).run_once()  # no longer waiting: nobody asks again
    assert [method for method, _, _ in stripe.fake.requests].count("GET") == 1
    assert await ledger(database) == [
        ("AUTHORIZE", "SUCCEEDED", intent["id"]),
        ("CAPTURE", "SUCCEEDED", intent["latest_charge"]),
    ]


async def test_a_declined_card_fails_the_payment_and_the_booking_waits(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking, intent = await paid_in_browser(client, stripe, place, "pm_card_chargeDeclined")
    assert intent["status"] == "requires_payment_method"
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    waiting = await read(client, booking["id"], place.as_guest)
    assert (waiting["status"], waiting["payment"]["status"]) == ("PENDING", "FAILED")
    # Stripe's reason, for the guest (and admins) only: a card's troubles are not the host's.
    reason = "query($id: ID!) { booking(id: $id) { payment { failureReason } } }"
    as_guest = await gql(client, reason, {"id": booking["id"]}, headers=place.as_guest)
    assert as_guest["data"]["booking"]["payment"]["failureReason"] == "Your card was declined."
    as_host = await gql(client, reason, {"id": booking["id"]}, headers=place.as_host)
    assert as_host["data"]["booking"]["payment"]["failureReason"] is None
    # Closed at Stripe, so the old page cannot pay it after all.
    assert intent["status"] == "canceled"
    assert await ledger(database) == [("RELEASE", "SUCCEEDED", intent["id"])]
    # Another try is another payment, another intent.
    again = await start(client, place, booking["id"])
    assert again["payment"]["id"] != waiting["payment"]["id"]
    assert len(stripe.fake.intents) == 2


async def test_a_word_whose_amount_is_not_ours_is_not_believed(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking, intent = await paid_in_browser(client, stripe, place)
    intent["amount"] = 100  # the intent at Stripe no longer says what we asked for
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    waiting = await read(client, booking["id"], place.as_guest)
    assert (waiting["status"], waiting["payment"]["status"]) == ("PENDING", "PENDING")
    intent["amount"], intent["currency"] = 26_220, "usd"
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    assert (await read(client, booking["id"], place.as_guest))["payment"]["status"] == "PENDING"
    assert await ledger(database) == []


async def test_a_held_request_goes_to_the_host_who_accepts_then_a_cancel_refunds(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, instantBook=False)
    booking, intent = await paid_in_browser(client, stripe, place)
    assert intent["status"] == "requires_capture"
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    held = await read(client, booking["id"], place.as_host)
    assert (held["status"], held["payment"]["status"]) == ("PENDING", "AUTHORIZED")

    accepted = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
    accepted = accepted["data"]["acceptBooking"]
    assert (accepted["status"], accepted["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 26_220)

    canceled = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    canceled = canceled["data"]["cancelBooking"]
    refunded = canceled["payment"]["refundedAmount"]["amount"]
    assert refunded == canceled["refundAmount"]["amount"] != "0.00"
    [refund] = stripe.fake.refunds.values()
    assert (refund["payment_intent"], refund["amount"]) == (
        intent["id"], int(refunded.replace(".", ""))
    )  # fmt: skip
    assert [kind for kind, _, _ in await ledger(database)] == ["AUTHORIZE", "CAPTURE", "REFUND"]


async def test_a_held_request_declined_or_expired_cancels_the_intent(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, instantBook=False)
    declined, declined_intent = await paid_in_browser(client, stripe, place)
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    body = await gql(client, DECLINE, {"id": declined["id"]}, headers=place.as_host)
    assert body["data"]["declineBooking"]["payment"]["status"] == "CANCELED"
    assert declined_intent["status"] == "canceled"

    other = await a_place(client, instantBook=False)
    lapsing = await booked(client, other, 20, 22)
    started = await start(client, other, lapsing["id"])
    await confirm_in_browser(stripe.url, started["clientSecret"])
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    assert (await read(client, lapsing["id"], other.as_host))["payment"]["status"] == "AUTHORIZED"
    clock.advance(hours=24, seconds=1)
    await worker_of(app).run_once()
    lapsed = await read(client, lapsing["id"], other.as_guest)
    assert (lapsed["status"], lapsed["payment"]["status"]) == ("CANCELED", "CANCELED")
    assert stripe.intent(started["clientSecret"])["status"] == "canceled"


async def test_a_longer_stay_of_a_stripe_booking_is_refused_and_the_booking_kept(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking, _ = await paid_in_browser(client, stripe, place)
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    variables = {"id": booking["id"], "in": day(10), "out": day(13), "guests": 2}
    body = await gql(client, MODIFY, variables, headers=place.as_guest)
    assert body["errors"][0]["extensions"]["code"] == "PAYMENT_FAILED"
    assert "cannot be charged more" in body["errors"][0]["message"]
    kept = await read(client, booking["id"], place.as_guest)
    assert (kept["checkOut"], kept["status"]) == (day(12), "CONFIRMED")
    assert (kept["payment"]["status"], kept["payment"]["amount"]) == (
        "SUCCEEDED", {"amount": "262.20"}
    )  # fmt: skip


async def test_stripe_out_of_reach_leaves_the_payment_waiting_for_the_next_pass(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking, _ = await paid_in_browser(client, stripe, place)
    clock.advance(minutes=2)
    stripe.fake.outage(1, status=500)
    await worker_of(app).run_once()
    assert (await read(client, booking["id"], place.as_guest))["status"] == "PENDING"
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    assert (await read(client, booking["id"], place.as_guest))["status"] == "CONFIRMED"


async def test_a_guest_who_pays_in_the_last_minute_of_the_hold_is_asked_about_before_it_lapses(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    clock.advance(minutes=14)
    await worker_of(app).run_once()  # asked: still waiting for the guest; next ask at 16'
    await confirm_in_browser(stripe.url, started["clientSecret"])
    clock.advance(minutes=1, seconds=1)  # the hold ends at 15'
    await worker_of(app).run_once()
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")


# A payment let go before it was paid is canceled at Stripe too: the page cannot complete it.


async def test_an_unpaid_hold_that_lapses_cancels_its_intent(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    clock.advance(minutes=15, seconds=1)
    await worker_of(app).run_once()
    lapsed = await read(client, booking["id"], place.as_guest)
    assert (lapsed["status"], lapsed["payment"]["status"]) == ("CANCELED", "CANCELED")
    intent = stripe.intent(started["clientSecret"])
    assert intent["status"] == "canceled"
    assert await ledger(database) == [("RELEASE", "SUCCEEDED", intent["id"])]
    refused = await confirm_in_browser(stripe.url, started["clientSecret"])
    assert refused.json()["error"]["code"] == "payment_intent_unexpected_state"


async def test_an_unpaid_booking_canceled_by_the_guest_cancels_its_intent(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    assert body["data"]["cancelBooking"]["status"] == "CANCELED"
    assert stripe.intent(started["clientSecret"])["status"] == "canceled"


async def test_a_guest_who_pays_as_the_booking_is_cancelled_gets_it_all_back(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    # The guest's page pays just as the cancel goes through: Stripe takes the money, and then
    # refuses to cancel the intent.
    await confirm_in_browser(stripe.url, started["clientSecret"])
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    canceled = body["data"]["cancelBooking"]
    assert (canceled["status"], canceled["payment"]["status"]) == ("CANCELED", "CANCELED")
    intent = stripe.intent(started["clientSecret"])
    assert intent["status"] == "succeeded"
    assert [(kind, status) for kind, status, _ in await ledger(database)] == [("RELEASE", "FAILED")]

    await worker_of(app).run_once()  # asks Stripe at once why the cancel was refused
    [refund] = stripe.fake.refunds.values()
    assert (refund["payment_intent"], refund["amount"]) == (intent["id"], 26_220)
    assert [(kind, status) for kind, status, _ in await ledger(database)] == [
        ("RELEASE", "FAILED"), ("CAPTURE", "SUCCEEDED"), ("REFUND", "SUCCEEDED"),
    ]  # fmt: skip
    after = await read(client, booking["id"], place.as_guest)
    assert (after["status"], after["payment"]["status"]) == ("CANCELED", "CANCELED")
    assert after["payment"]["refundedAmount"]["amount"] == "262.20"
    # Asked no more, and never refunded twice.
    clock.advance(minutes=10)
    await worker_of(app).run_once()
    assert len(stripe.fake.refunds) == 1
    looked_up = [r for r in stripe.fake.requests if r[0] == "GET" and intent["id"] in r[1]]
    assert len(looked_up) == 2  # the check, and the refund reading the intent's currency


async def test_switching_from_stripe_to_another_provider_cancels_the_intent_first(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    paid = await pay(client, place, booking["id"])  # with TEST
    assert paid["status"] == "SUCCEEDED"
    assert stripe.intent(started["clientSecret"])["status"] == "canceled"
    assert (await read(client, booking["id"], place.as_guest))["status"] == "CONFIRMED"
